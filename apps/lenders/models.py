from decimal import Decimal
from typing import ClassVar
from zoneinfo import available_timezones

import pgtrigger
import phonenumbers
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.core.money import ISO_4217_CODES, MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


def validate_country(value: str) -> None:
    # phonenumbers knows every ISO 3166-1 region that has a telephone plan,
    # which is every country we can lend in (we reach customers by phone).
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            _("%(value)s is not an ISO 3166-1 country code."), params={"value": value}
        )


def validate_currency(value: str) -> None:
    if value not in ISO_4217_CODES:
        raise ValidationError(
            _("%(value)s is not an ISO 4217 currency code."), params={"value": value}
        )


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone."), params={"value": value})


MESSAGE_CHANNELS = [("push", _("Push")), ("whatsapp", _("WhatsApp")), ("sms", _("SMS"))]


def default_message_channels() -> list[str]:
    return ["push", "whatsapp", "sms"]


def validate_message_channels(value: list[str]) -> None:
    if not value:
        raise ValidationError(_("Name at least one channel."), code="empty")
    if len(set(value)) != len(value):
        raise ValidationError(_("Name each channel once."), code="repeated")


def validate_scopes(value: list[str]) -> None:
    if not value:
        raise ValidationError(_("Give the key at least one scope."), code="empty")
    if len(set(value)) != len(value):
        raise ValidationError(_("Name each scope once."), code="repeated")


class Lender(BaseModel):
    """A lending business: its country, currency, timezone and language."""

    lender_path: ClassVar[str] = "pk"

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    country = models.CharField(
        _("country"),
        max_length=2,
        validators=[RegexValidator(r"^[A-Z]{2}$"), validate_country],
        help_text=_("ISO 3166-1 alpha-2, e.g. KE, PH, MX."),
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        validators=[RegexValidator(r"^[A-Z]{3}$"), validate_currency],
        help_text=_("ISO 4217, e.g. KES, PHP, MXN."),
    )
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        validators=[validate_timezone],
        help_text=_("IANA, e.g. Africa/Nairobi."),
    )
    locale = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )
    emergency_grace_hours = models.PositiveSmallIntegerField(
        _("emergency grace (hours)"),
        default=24,
        validators=[MaxValueValidator(72)],
        help_text=_(
            "Once per restriction episode (and at most once in 30 days) the customer may lift a "
            "lock from the lock screen, with no network, for this many hours. 0 turns it off."
        ),
    )
    message_channels = ArrayField(
        models.CharField(max_length=10, choices=MESSAGE_CHANNELS),
        verbose_name=_("message channels, in order"),
        default=default_message_channels,
        validators=[validate_message_channels],
        help_text=_(
            "The channels a message to a customer tries, first to last: the phone's agent "
            "(push), WhatsApp, SMS. A message not delivered in time falls back to the next "
            "one, once. A channel the lender has no account for is skipped."
        ),
    )

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"), name="lender_country_iso"
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="lender_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(BaseModel):
    """A back-office user's place at one lender, with their role."""

    lender_path: ClassVar[str] = "lender"

    class Role(models.TextChoices):
        AGENT = "agent", _("Agent")
        SUPERVISOR = "supervisor", _("Supervisor")
        LENDER_ADMIN = "lender_admin", _("Lender admin")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    lender = models.ForeignKey(Lender, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.AGENT)

    class Meta:
        ordering = ("lender", "user")

    def __str__(self) -> str:
        return f"{self.user} @ {self.lender} ({self.get_role_display()})"


class LoanProduct(BaseModel):
    """A lender's installment plan as sold at the counter.

    Loans copy the terms they need when they are signed, so editing or
    retiring a product never changes a signed loan.
    """

    lender_path: ClassVar[str] = "lender"

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", _("Weekly")
        BIWEEKLY = "biweekly", _("Every two weeks")
        MONTHLY = "monthly", _("Monthly")

    class InterestMethod(models.TextChoices):
        FLAT = "flat", _("Flat, per period, on the financed amount")
        DECLINING = "declining", _("Declining balance, from an annual rate")

    class LateFeeType(models.TextChoices):
        NONE = "none", _("No late fee")
        FIXED = "fixed", _("Fixed amount")
        PERCENT = "percent", _("Percent of the overdue installment")

    lender = models.ForeignKey(Lender, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(_("name"), max_length=120)
    installments = models.PositiveSmallIntegerField(
        _("number of installments"), validators=[MinValueValidator(1), MaxValueValidator(104)]
    )
    frequency = models.CharField(_("frequency"), max_length=10, choices=Frequency.choices)
    min_down_payment_percent = models.DecimalField(
        _("minimum down payment (%)"),
        max_digits=7,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal("99.9999"))],
    )
    interest_method = models.CharField(
        _("interest"), max_length=10, choices=InterestMethod.choices, default=InterestMethod.FLAT
    )
    interest_rate_percent = models.DecimalField(
        _("interest rate (%)"),
        max_digits=7,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("Per period for flat interest; per year for declining balance."),
    )
    origination_fee_percent = models.DecimalField(
        # xgettext:no-python-format
        _("origination fee (% of the financed amount)"),
        max_digits=7,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(50))],
    )
    late_fee_type = models.CharField(
        _("late fee"), max_length=10, choices=LateFeeType.choices, default=LateFeeType.NONE
    )
    late_fee_value = models.DecimalField(
        _("late fee value"),
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("An amount for a fixed fee, a percent for a percent fee."),
    )
    late_fee_cap = models.DecimalField(
        _("late fee cap"),
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        null=True,
        blank=True,
        help_text=_("The most a percent late fee can be, per installment."),
    )
    grace_days = models.PositiveSmallIntegerField(
        _("grace days"),
        default=0,
        validators=[MaxValueValidator(60)],
        help_text=_("Days after the due date before an installment is overdue."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ("lender", "name")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "name"], name="loan_product_name_unique_per_lender"
            ),
            models.CheckConstraint(
                condition=models.Q(installments__gte=1, installments__lte=104),
                name="loan_product_installments_1_104",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    min_down_payment_percent__gte=0, min_down_payment_percent__lt=100
                ),
                name="loan_product_down_payment_0_100",
            ),
            models.CheckConstraint(
                condition=models.Q(interest_rate_percent__gte=0), name="loan_product_interest_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(origination_fee_percent__gte=0, origination_fee_percent__lte=50),
                name="loan_product_origination_fee_0_50",
            ),
            models.CheckConstraint(
                condition=models.Q(late_fee_value__gte=0), name="loan_product_late_fee_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(grace_days__lte=60), name="loan_product_grace_lte_60"
            ),
            models.CheckConstraint(
                condition=models.Q(late_fee_cap__isnull=True) | models.Q(late_fee_type="percent"),
                name="loan_product_cap_only_for_percent",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str | Promise] = {}
        if self.interest_method == self.InterestMethod.FLAT and self.interest_rate_percent > 100:
            errors["interest_rate_percent"] = _(
                "A flat rate above 100% per period is not a loan product."
            )
        if (
            self.interest_method == self.InterestMethod.DECLINING
            and self.interest_rate_percent > 1000
        ):
            # xgettext:no-python-format
            errors["interest_rate_percent"] = _("An annual rate above 1000% is not allowed.")
        if self.late_fee_type == self.LateFeeType.NONE and self.late_fee_value:
            errors["late_fee_value"] = _("Choose a late fee type, or set the value to 0.")
        if self.late_fee_type != self.LateFeeType.NONE and not self.late_fee_value:
            errors["late_fee_value"] = _("A late fee needs a value above 0.")
        if self.late_fee_type == self.LateFeeType.PERCENT and self.late_fee_value > 100:
            errors["late_fee_value"] = _("A percent late fee cannot exceed 100%.")
        if self.late_fee_cap is not None and self.late_fee_type != self.LateFeeType.PERCENT:
            errors["late_fee_cap"] = _("Only a percent late fee has a cap.")
        if self.late_fee_cap is not None and self.late_fee_cap <= 0:
            errors["late_fee_cap"] = _("A cap must be above 0.")
        if errors:
            raise ValidationError(errors)

    @property
    def periods_per_year(self) -> int:
        return {self.Frequency.WEEKLY: 52, self.Frequency.BIWEEKLY: 26, self.Frequency.MONTHLY: 12}[
            self.Frequency(self.frequency)
        ]


class RestrictionPolicy(BaseModel):
    """A lender's staged restriction ladder: a name over a series of immutable versions.

    At most one policy per lender is active: its latest version is the one a
    new loan pins when it is signed (``restriction_policy_version_in_force``).
    Editing a policy means adding a version; a signed loan keeps its own.
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey(
        Lender, on_delete=models.PROTECT, related_name="restriction_policies"
    )
    name = models.CharField(_("name"), max_length=120)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("restriction policy")
        verbose_name_plural = _("restriction policies")
        ordering = ("lender", "-created_at", "-id")
        constraints = [
            # tests/lenders/test_services_restriction_policies.py::test_database_refuses_a_second_active_policy_when_inserted_directly
            models.UniqueConstraint(
                fields=["lender"],
                condition=models.Q(is_active=True),
                name="restriction_policy_one_active_per_lender",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RestrictionPolicyVersion(BaseModel):
    """One immutable version of a policy; loans point at the version they were signed under.

    Append-only: the database refuses UPDATE and DELETE, and refuses a version
    whose lender differs from its policy's (tests/lenders/test_services_restriction_policies.py).
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey(
        Lender, on_delete=models.PROTECT, related_name="restriction_policy_versions"
    )
    policy = models.ForeignKey(RestrictionPolicy, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(_("version"), validators=[MinValueValidator(1)])

    class Meta:
        verbose_name = _("restriction policy version")
        ordering = ("policy", "version")
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "version"], name="restriction_policy_version_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="restriction_policy_version_gte_1"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="restriction_policy_version_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
            pgtrigger.Trigger(
                name="restriction_policy_version_same_lender",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=(
                    "IF NEW.lender_id IS DISTINCT FROM (SELECT lender_id FROM "
                    "lenders_restrictionpolicy WHERE id = NEW.policy_id) THEN "
                    "RAISE EXCEPTION 'a policy version belongs to its policy''s lender'; "
                    "END IF; RETURN NEW;"
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} v{self.version}"


class RestrictionStage(BaseModel):
    """One step of a policy version: from ``days_overdue`` on, apply ``action``.

    Append-only with its version. The rules across stages and the country's
    rules are checked by ``restriction_policy_create`` / ``_version_create``.
    """

    lender_path: ClassVar[str] = "lender"

    class Action(models.TextChoices):
        # Declared mildest first: a policy's stages never get milder.
        REMINDER = "reminder", _("Reminder notification")
        WALLPAPER = "wallpaper", _("Payment reminder wallpaper and lock-screen text")
        ALARM = "alarm", _("Alarms at set local times")
        BLOCK_APPS = "block_apps", _("Blocked apps")
        LOCK = "lock", _("Full lock")

        @property
        def severity(self) -> int:
            return list(type(self)).index(self)

    lender = models.ForeignKey(Lender, on_delete=models.PROTECT, related_name="+")
    policy_version = models.ForeignKey(
        RestrictionPolicyVersion, on_delete=models.PROTECT, related_name="stages"
    )
    position = models.PositiveSmallIntegerField(_("position"), validators=[MinValueValidator(1)])
    days_overdue = models.PositiveSmallIntegerField(
        _("days overdue"), validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    messages = models.JSONField(
        _("messages"), default=dict, blank=True, help_text=_("Text per language code.")
    )
    alarm_times = models.JSONField(
        _("alarm times"), default=list, blank=True, help_text=_("Local times, HH:MM.")
    )
    blocked_packages = models.JSONField(_("blocked packages"), default=list, blank=True)
    blocked_categories = models.JSONField(_("blocked app categories"), default=list, blank=True)

    class Meta:
        verbose_name = _("restriction stage")
        ordering = ("policy_version", "position")
        constraints = [
            models.UniqueConstraint(
                fields=["policy_version", "position"], name="restriction_stage_position_unique"
            ),
            models.UniqueConstraint(
                fields=["policy_version", "days_overdue"], name="restriction_stage_day_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(position__gte=1), name="restriction_stage_position_gte_1"
            ),
            models.CheckConstraint(
                condition=models.Q(days_overdue__gte=1, days_overdue__lte=365),
                name="restriction_stage_days_1_365",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    action__in=["reminder", "wallpaper", "alarm", "block_apps", "lock"]
                ),
                name="restriction_stage_action_known",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="restriction_stage_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
            pgtrigger.Trigger(
                name="restriction_stage_same_lender",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func=(
                    "IF NEW.lender_id IS DISTINCT FROM (SELECT lender_id FROM "
                    "lenders_restrictionpolicyversion WHERE id = NEW.policy_version_id) THEN "
                    "RAISE EXCEPTION 'a restriction stage belongs to its version''s lender'; "
                    "END IF; RETURN NEW;"
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"day {self.days_overdue}: {self.get_action_display()}"


class MessageTemplate(BaseModel):
    """One version of a text a lender sends its customers, for one kind and one language.

    Append-only: each save by the lender's admin adds a version (``message_template_save``),
    the newest is the one sent, and the database refuses UPDATE and DELETE, so every text a
    customer was sent stays on record with who wrote it and when. A kind and language with no
    row uses the shipped text (``apps.lenders.messages``).
    """

    lender_path: ClassVar[str] = "lender"

    class Kind(models.TextChoices):
        DUE_SOON = "due_soon", _("Reminder before the due date")
        DUE_TODAY = "due_today", _("Reminder on the due date")
        DUE_PAST = "due_past", _("Reminder on the due date, read after it")
        OVERDUE = "overdue", _("Overdue notice")
        LOCK_NOTICE = "lock_notice", _("Notice of blocked apps or a lock")
        RECEIPT = "receipt", _("Payment receipt")
        RECEIPT_REF = "receipt_ref", _("Payment receipt with the provider's receipt number")
        CONSENT_CODE = "consent_code", _("Consent code")
        LOGIN_CODE = "login_code", _("Login code")
        OFFLINE_UNLOCK = "offline_unlock", _("Offline unlock code")
        OFFLINE_RELEASE = "offline_release", _("Offline release code (loan paid off)")
        VOICE = "voice", _("Reminder read by a voice call")
        # answers to the customer's texts (apps.collections.services.replies)
        REPLY_BALANCE = "reply_balance", _("Answer to BAL: the balance and the next installment")
        REPLY_BALANCE_LATE = "reply_balance_late", _("Answer to BAL: the balance and what is late")
        REPLY_NOTHING_DUE = "reply_nothing_due", _("Answer to BAL or PAY: nothing left to pay")
        REPLY_PAY_LINK = "reply_pay_link", _("Answer to PAY: a link to pay")
        REPLY_PROMISE = "reply_promise", _("Answer to PROMISE: the promise is recorded")
        REPLY_NO_PROMISE = "reply_no_promise", _("Answer to PROMISE: refused, and why")
        REPLY_HELP = "reply_help", _("Answer to HELP: what a customer can do by text")
        REPLY_RECEIVED = "reply_received", _("Answer to any other text: an agent will answer")
        FUNDS_PAY_LINK = "funds_pay_link", _("Link to pay when money arrived (funds alert)")

    lender = models.ForeignKey(Lender, on_delete=models.PROTECT, related_name="message_templates")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    version = models.PositiveIntegerField(_("version"), validators=[MinValueValidator(1)])
    text = models.TextField(_("text"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("message text")
        verbose_name_plural = _("message texts")
        ordering = ("lender", "kind", "language", "-version")
        constraints = [
            # also the index of "the newest version of each kind and language"
            models.UniqueConstraint(
                fields=["lender", "kind", "language", "version"],
                name="message_template_version_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="message_template_version_gte_1"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=[
                        "due_soon",
                        "due_today",
                        "due_past",
                        "overdue",
                        "lock_notice",
                        "receipt",
                        "receipt_ref",
                        "consent_code",
                        "login_code",
                        "offline_unlock",
                        "offline_release",
                        "voice",
                        "reply_balance",
                        "reply_balance_late",
                        "reply_nothing_due",
                        "reply_pay_link",
                        "reply_promise",
                        "reply_no_promise",
                        "reply_help",
                        "reply_received",
                        "funds_pay_link",
                    ]
                ),
                name="message_template_kind_known",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="message_template_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.language}) v{self.version}"


class ApiKey(BaseModel):
    """A lender's credential for the lender API: ``Authorization: Api-Key <prefix>.<secret>``.

    Only the SHA-512 of the whole key is stored (``hashed_key``); the key itself is shown
    once, when it is created (``apps.lenders.services.api_key_create``). The prefix finds
    the row, and the hash decides. A key acts only for its lender and only within its
    scopes; a revoked or expired one is refused (401). tests/lenders/test_api_keys.py.
    """

    lender_path: ClassVar[str] = "lender"

    class Scope(models.TextChoices):
        LOANS_READ = "loans:read", _("Read loans")
        LOANS_WRITE = "loans:write", _("Create loans and mint enrollment codes")
        PAYMENTS_WRITE = "payments:write", _("Post payments and reversals")
        DEVICES_READ = "devices:read", _("Read devices' state")
        DEVICES_COMMAND = "devices:command", _("Send commands to devices")
        WEBHOOKS_MANAGE = "webhooks:manage", _("Manage webhook endpoints")

    lender = models.ForeignKey(Lender, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(
        _("name"), max_length=100, help_text=_("Which system uses it, e.g. 'Loan system'.")
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=150, editable=False)
    scopes = ArrayField(
        models.CharField(max_length=20, choices=Scope.choices),
        verbose_name=_("scopes"),
        validators=[validate_scopes],
    )
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True, help_text=_("Empty: never.")
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        ordering = ("lender", "-created_at")
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"
