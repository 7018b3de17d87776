import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, money_format

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def money_field(verbose_name: "StrOrPromise", **kwargs: Any) -> models.DecimalField:
    return models.DecimalField(
        verbose_name, max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs
    )


ZERO = Decimal(0)


class Stage(models.TextChoices):
    """A loan's restriction stage, mildest first (a policy stage's action, or none)."""

    NONE = "none", _("No restriction")
    REMINDER = "reminder", _("Reminders")
    WALLPAPER = "wallpaper", _("Payment-reminder wallpaper")
    ALARM = "alarm", _("Alarms")
    BLOCK_APPS = "block_apps", _("Blocked apps")
    LOCK = "lock", _("Locked")


STAGE_ORDER: tuple[str, ...] = tuple(Stage.values)


class Loan(BaseModel):
    """A signed financing of one phone, with the terms copied from its product."""

    lender_path: ClassVar[str] = "lender"

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ACTIVE = "active", _("Active")
        PAID_OFF = "paid_off", _("Paid off")
        CANCELLED = "cancelled", _("Cancelled")
        WRITTEN_OFF = "written_off", _("Written off")

    # The only allowed status changes (tests/collections/test_services_loans.py).
    # PAID_OFF -> ACTIVE happens only when a reversal reopens the balance; ACTIVE -> CANCELLED
    # only before the phone enrolled and before any payment (loan_cancel).
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        Status.DRAFT: frozenset({Status.ACTIVE, Status.CANCELLED}),
        Status.ACTIVE: frozenset({Status.PAID_OFF, Status.WRITTEN_OFF, Status.CANCELLED}),
        Status.PAID_OFF: frozenset({Status.ACTIVE}),
        Status.WRITTEN_OFF: frozenset({Status.PAID_OFF}),
        Status.CANCELLED: frozenset(),
    }

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="loans")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="loans"
    )
    product = models.ForeignKey(
        "lenders.LoanProduct", on_delete=models.PROTECT, related_name="loans"
    )
    policy_version = models.ForeignKey(
        "lenders.RestrictionPolicyVersion",
        on_delete=models.PROTECT,
        related_name="loans",
        help_text=_("The restriction policy in force when the loan was signed."),
    )
    consent = models.OneToOneField(
        "customers.ConsentRecord",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="loan",
        help_text=_("No loan without the customer's recorded consent to its terms."),
    )
    shop = models.ForeignKey(
        "retailers.Shop", null=True, blank=True, on_delete=models.PROTECT, related_name="loans"
    )
    reference = models.CharField(_("loan number"), max_length=20)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.DRAFT
    )
    currency = models.CharField(_("currency"), max_length=3)
    device_price_amount = money_field(_("device price"))
    down_payment_amount = money_field(_("down payment"))
    financed_amount = money_field(_("financed amount"))
    start_date = models.DateField(
        _("schedule start"), help_text=_("The lender's local date of signing.")
    )
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    paid_off_at = models.DateTimeField(_("paid off at"), null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001  (unique when set)
    external_id = models.CharField(  # noqa: DJ001  (unique per lender when set)
        _("id in the lender's system"),
        max_length=100,
        null=True,
        blank=True,
        help_text=_("The loan's id in the lender's own loan system, sent through the lender API."),
    )
    # terms copied from the product at signing
    installments_count = models.PositiveSmallIntegerField()
    frequency = models.CharField(max_length=10)
    interest_method = models.CharField(max_length=10)
    interest_rate_percent = models.DecimalField(max_digits=7, decimal_places=4)
    origination_fee_percent = models.DecimalField(max_digits=7, decimal_places=4)
    grace_days = models.PositiveSmallIntegerField()
    late_fee_type = models.CharField(max_length=10)
    late_fee_value = money_field(_("late fee value"))
    late_fee_cap = money_field(_("late fee cap"), null=True, blank=True)
    stage = models.CharField(
        _("restriction stage"), max_length=12, choices=Stage.choices, default=Stage.NONE
    )
    stage_changed_at = models.DateTimeField(_("stage since"), null=True, blank=True)
    # Set at payoff, never cleared: the phone was set free for good. A loan reopened since (a
    # chargeback, a late fee) is "released with arrears": the restriction ladder no longer
    # applies to it, and it waits in a work queue for an agent.
    collateral_released_at = models.DateTimeField(
        _("phone released at"),
        null=True,
        blank=True,
        help_text=_("The phone was released for good at payoff; the loan can never restrict it."),
    )

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "reference"], name="loan_reference_unique_per_lender"
            ),
            models.UniqueConstraint(
                fields=["lender", "idempotency_key"], name="loan_idempotency_key_unique_per_lender"
            ),
            models.UniqueConstraint(
                fields=["lender", "external_id"], name="loan_external_id_unique_per_lender"
            ),
            models.CheckConstraint(
                condition=Q(
                    device_price_amount__gt=0, down_payment_amount__gte=0, financed_amount__gt=0
                )
                & Q(financed_amount=F("device_price_amount") - F("down_payment_amount")),
                name="loan_amounts_consistent",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "active", "paid_off", "cancelled", "written_off"]),
                name="loan_status_valid",
            ),
            # No loan becomes active without recorded consent: tests/collections/test_services_loans.py
            models.CheckConstraint(
                condition=Q(status__in=["draft", "cancelled"]) | Q(consent__isnull=False),
                name="loan_signed_with_consent",
            ),
        ]
        indexes = [
            models.Index(fields=["lender", "status"], name="loan_lender_status_idx"),
            # the sweep's ranges: one lender's active loans by id
            models.Index(
                fields=["lender", "id"], condition=Q(status="active"), name="loan_active_by_id"
            ),
            # the sweep's clean-up: active loans off the ladder (their phone released). Its
            # predicate names no column the sweep writes, so raising a stage stays a HOT update
            models.Index(
                fields=["lender", "id"],
                condition=Q(status="active", collateral_released_at__isnull=False),
                name="loan_released_active",
            ),
        ]
        # A loan ends by its status, never by deletion: the rows written in bulk for it
        # (stage history, phone states, pushes) name it without a foreign-key check each.
        triggers = [pgtrigger.Protect(name="loan_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return self.reference

    @staticmethod
    def reference_as_typed(text: str) -> str:
        """A loan number as a customer types it (an M-Pesa account number): any case, with
        spaces, with or without the dash after SC."""
        typed = "".join(text.split()).upper()
        if len(typed) == 10 and typed.startswith("SC") and "-" not in typed:
            typed = f"SC-{typed[2:]}"
        return typed

    def can_become(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]

    @property
    def released_with_arrears(self) -> bool:
        """Reopened after its phone was released at payoff: owed money, but off the ladder."""
        return self.status == self.Status.ACTIVE and self.collateral_released_at is not None


# The restriction sweep classifies a loan from its row, its installments and its pauses,
# and raises it only if its row is still the version it classified (``xmin``). So every
# write to an installment's due date or payment, or to a pause, also writes the loan's
# row, in the same transaction, whoever makes it (each writer holds the loan's lock
# first, the global order). tests/collections/test_races_restriction.py fails without.
def _marks_its_loan(
    name: str, *, operation: pgtrigger.Operation, condition: pgtrigger.Condition | None = None
) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.After,
        operation=operation,
        level=pgtrigger.Row,
        condition=condition,
        func="UPDATE collections_loan SET updated_at = now() WHERE id = NEW.loan_id; RETURN NULL;",
    )


# What one installment still owes, as SQL over its columns (``{t}`` is the table or alias).
OWED_SQL = (
    "({t}.principal_amount + {t}.interest_amount + {t}.fee_amount + {t}.late_fee_amount"
    " - {t}.principal_paid - {t}.interest_paid - {t}.fee_paid - {t}.late_fee_paid)"
)
# The one definition of "unpaid": an installment is unpaid while it owes more than zero, and
# ``paid_at`` (when it came to owe nothing) says so: the database holds the two equal
# (``installment_paid_at_iff_nothing_owed``). The sweep, the pages, the dashboard and the
# evidence file all ask this question (tests/collections/test_models_unpaid.py).
UNPAID_SQL = "{t}.paid_at IS NULL"
UNPAID = Q(paid_at__isnull=True)


def _owed_lookups() -> tuple[models.Lookup, models.Lookup]:
    due = F("principal_amount") + F("interest_amount") + F("fee_amount") + F("late_fee_amount")
    paid = F("principal_paid") + F("interest_paid") + F("fee_paid") + F("late_fee_paid")
    return models.lookups.GreaterThan(due, paid), models.lookups.Exact(due, paid)


class Installment(BaseModel):
    """One due amount of a loan, by component, with what has been paid of each."""

    lender_path: ClassVar[str] = "lender"

    COMPONENTS: ClassVar[tuple[str, ...]] = (
        "late_fee",
        "fee",
        "interest",
        "principal",
    )  # allocation order

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="installments")
    sequence = models.PositiveSmallIntegerField()
    due_date = models.DateField(db_index=True)
    principal_amount = money_field(_("principal"))
    interest_amount = money_field(_("interest"))
    fee_amount = money_field(_("fee"))
    late_fee_amount = money_field(_("late fee"), default=ZERO)
    principal_paid = money_field(_("principal paid"), default=ZERO)
    interest_paid = money_field(_("interest paid"), default=ZERO)
    fee_paid = money_field(_("fee paid"), default=ZERO)
    late_fee_paid = money_field(_("late fee paid"), default=ZERO)
    late_fee_assessed_at = models.DateTimeField(null=True, blank=True)
    # The late fee is part of the replay of the loan's payments (allocation.py): it stands when
    # the fee run has reached the installment (``late_fee_charged`` set, the fee the terms
    # charge) and the installment was not paid by money received before ``late_from`` (the start
    # of the lender's local day after its due date and grace days). ``late_fee_amount`` is what
    # that replay makes of it.
    late_from = models.DateTimeField(_("late from"))
    late_fee_charged = money_field(_("late fee if late"), null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True, help_text=_("When it was fully paid."))

    class Meta:
        ordering = ("loan", "sequence")
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "sequence"], name="installment_sequence_unique"
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{c}_paid__gte": 0, f"{c}_paid__lte": F(f"{c}_amount")}),
                    name=f"installment_{c}_paid_within_due",
                )
                for c in ("principal", "interest", "fee", "late_fee")
            ],
            models.CheckConstraint(
                condition=Q(
                    principal_amount__gte=0,
                    interest_amount__gte=0,
                    fee_amount__gte=0,
                    late_fee_amount__gte=0,
                ),
                name="installment_amounts_gte_0",
            ),
            # paid (``paid_at`` set) exactly when it owes nothing: UNPAID above
            models.CheckConstraint(
                condition=Q(_owed_lookups()[0], paid_at__isnull=True)
                | Q(_owed_lookups()[1], paid_at__isnull=False),
                name="installment_paid_at_iff_nothing_owed",
            ),
        ]
        # the sweep's question: each loan's oldest unpaid due date
        indexes = [
            models.Index(
                fields=["loan", "due_date"],
                condition=UNPAID,
                name="installment_unpaid_by_loan",
            ),
            # the fee run's question: which installments have become late since it last ran
            models.Index(
                fields=["lender", "late_from"],
                condition=Q(late_fee_charged__isnull=True),
                name="installment_fee_not_reached",
            ),
        ]
        # installments are inserted in the transaction that signs their loan, and never
        # deleted: only updates matter
        triggers = [
            _marks_its_loan(
                "installment_marks_its_loan",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange("paid_at", "due_date", "loan"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.loan_id} #{self.sequence}"

    @property
    def total_due(self) -> Decimal:
        return sum((getattr(self, f"{c}_amount") for c in self.COMPONENTS), ZERO)

    @property
    def total_paid(self) -> Decimal:
        return sum((getattr(self, f"{c}_paid") for c in self.COMPONENTS), ZERO)

    @property
    def outstanding(self) -> Decimal:
        return self.total_due - self.total_paid


class Payment(BaseModel):
    """Money received for a loan. Never edited: a reversal is a row of its own."""

    lender_path: ClassVar[str] = "lender"

    class Channel(models.TextChoices):
        PROVIDER = "provider", _("Payment provider")
        MANUAL = "manual", _("Manual entry")
        PAY_LINK = "pay_link", _("Pay link")
        LENDER_API = "lender_api", _("The lender's own system (API)")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="payments")
    amount = money_field(_("amount"))
    currency = models.CharField(max_length=3)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider = models.CharField(max_length=40)
    provider_ref = models.CharField(_("provider reference"), max_length=100)
    received_at = models.DateTimeField()
    receipt_ref = models.CharField(_("receipt reference"), max_length=100, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ("received_at", "provider", "provider_ref")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider", "provider_ref"],
                name="payment_provider_ref_unique_per_lender",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_gt_0"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="payment_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"{money_format(self.amount, self.currency)} ({self.provider_ref})"


class PaymentReversal(BaseModel):
    """A chargeback or refund of a payment, possibly arriving before the payment itself."""

    lender_path: ClassVar[str] = "lender"

    class Kind(models.TextChoices):
        CHARGEBACK = "chargeback", _("Chargeback")
        REFUND = "refund", _("Refund")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="reversals")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = money_field(_("amount"))
    currency = models.CharField(max_length=3)
    provider = models.CharField(max_length=40)
    provider_ref = models.CharField(max_length=100)
    payment_provider_ref = models.CharField(_("reverses payment"), max_length=100)
    received_at = models.DateTimeField()
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ("received_at", "provider", "provider_ref")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider", "provider_ref"],
                name="reversal_provider_ref_unique_per_lender",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="reversal_amount_gt_0"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="reversal_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]


class Allocation(BaseModel):
    """One ledger line: part of a payment applied to (credit) or taken back from (debit)
    one component of one installment. Append-only; the net of a payment's lines is
    its current allocation."""

    lender_path: ClassVar[str] = "lender"

    class Direction(models.TextChoices):
        CREDIT = "credit", _("Applied")
        DEBIT = "debit", _("Taken back")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="allocations")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    installment = models.ForeignKey(
        Installment, on_delete=models.PROTECT, related_name="allocations"
    )
    component = models.CharField(max_length=10, choices=[(c, c) for c in Installment.COMPONENTS])
    direction = models.CharField(max_length=6, choices=Direction.choices)
    amount = money_field(_("amount"))

    class Meta:
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_gt_0")
        ]
        triggers = [
            pgtrigger.Protect(
                name="allocation_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]


class PaymentAttempt(BaseModel):
    """A payment we asked a provider for: an M-Pesa prompt on the customer's phone, a Stripe
    checkout, an OXXO voucher.

    ``key`` is ours (sent to the provider where it takes one); ``attempt_ref`` is the
    provider's (an STK CheckoutRequestID, a Checkout Session id), known once the provider
    took the request. The status moves once, under the loan's lock then the attempt's:
    starting -> started (-> pending: a voucher issued) -> paid, failed or expired. A
    provider's callback or the reconciliation query moves it, whichever comes first; the
    other finds it settled. ``amount`` is what the provider was asked for.
    """

    lender_path: ClassVar[str] = "lender"

    class Status(models.TextChoices):
        STARTING = "starting", _("Being sent to the provider")
        STARTED = "started", _("Waiting for the customer")
        PENDING = "pending", _("Voucher issued, waiting for the money")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Not paid")
        EXPIRED = "expired", _("Expired")

    OPEN: ClassVar[tuple[str, ...]] = ("starting", "started", "pending")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="payment_attempts")
    provider = models.CharField(max_length=40)
    key = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    attempt_ref = models.CharField(_("provider's id"), max_length=100, blank=True)
    amount = money_field(_("amount"))
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTING)
    started_by = models.CharField(_("started by"), max_length=20)
    redirect_url = models.TextField(blank=True)  # the provider's page, as it gave it
    voucher_number = models.CharField(max_length=60, blank=True)
    voucher_expires_at = models.DateTimeField(null=True, blank=True)
    voucher_url = models.TextField(blank=True)
    receipt = models.CharField(_("provider's receipt"), max_length=100, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    payment = models.ForeignKey(
        "Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider", "attempt_ref"],
                condition=~Q(attempt_ref=""),
                name="payment_attempt_ref_once",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_attempt_amount_gt_0"),
        ]
        indexes = [
            models.Index(
                fields=["status", "created_at"],
                condition=Q(status__in=["starting", "started", "pending"]),
                name="payment_attempt_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {money_format(self.amount, self.currency)} ({self.get_status_display()})"


class WebhookEvent(BaseModel):
    """A payment provider's event, stored once (raw body included) when its signature holds."""

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(max_length=40)
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=40)
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reversal = models.ForeignKey(
        PaymentReversal, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider", "event_id"], name="webhook_event_once"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="webhook_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]


class ReconciliationReport(BaseModel):
    """One lender's payments through one provider on one business day, set beside the
    payments the provider lists as settled, and what differs between the two.

    Built by ``reconciliation_report_build`` (each night for yesterday, or by the lender's
    admin), once per lender, provider and day: building the same day again replaces the row.
    ``provider_count`` and ``provider_total`` stay empty where the provider lists nothing (M-Pesa)
    or failed to answer (``status`` failed, with the provider's ``failure_code``). Totals are in
    the lender's currency, as every payment of its loans is. Each difference is a dict:
    ``kind``, ``reference`` (the provider's), ``amount`` and ``currency`` (ours where we have
    the payment), ``provider_amount`` and ``provider_currency`` (where the amounts differ),
    ``received_at``, ``loan`` (its id, or None), ``loan_reference`` and, for money paid to the
    paybill for no loan, the ``account`` the customer typed.
    """

    lender_path: ClassVar[str] = "lender"

    class Status(models.TextChoices):
        BUILT = "built", _("Built")
        FAILED = "failed", _("Provider failed")

    class Kind(models.TextChoices):
        MISSING_HERE = "missing_here", _("Settled at the provider, no payment here")
        MISSING_AT_PROVIDER = "missing_at_provider", _("Applied here, not listed by the provider")
        AMOUNT_DIFFERS = "amount_differs", _("Amounts differ")
        UNMATCHED = "unmatched", _("Paid to the paybill for no loan")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    provider = models.CharField(_("provider"), max_length=40)
    day = models.DateField(_("day"), help_text=_("The lender's local business date."))
    generated_at = models.DateTimeField(_("built at"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    failure_code = models.CharField(_("provider's error"), max_length=60, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    our_count = models.PositiveIntegerField(_("payments here"))
    our_total = money_field(_("total here"))
    provider_count = models.PositiveIntegerField(_("at the provider"), null=True, blank=True)
    provider_total = money_field(_("total at the provider"), null=True, blank=True)
    difference_count = models.PositiveIntegerField(_("differences"))
    differences = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("-day", "provider")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider", "day"], name="reconciliation_report_once_a_day"
            ),
            models.CheckConstraint(
                condition=Q(provider_count__isnull=True, provider_total__isnull=True)
                | Q(provider_count__isnull=False, provider_total__isnull=False),
                name="reconciliation_report_provider_side_whole",
            ),
            models.CheckConstraint(
                condition=Q(status="built", failure_code="")
                | (Q(status="failed") & ~Q(failure_code="")),
                name="reconciliation_report_failed_has_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day}"


class LoanStageChange(BaseModel):
    """One move of a loan's restriction stage and the fact behind it. Append-only.

    The sweep raises a stage at most once per loan and business date (a
    unique index backs this); a payment, a pause or an agent lowers it.
    """

    lender_path: ClassVar[str] = "lender"

    class Cause(models.TextChoices):
        SWEEP = "sweep", _("Daily sweep")
        PAYMENT = "payment", _("Payment")
        PAUSE = "pause", _("Pause")
        AGENT = "agent", _("Agent's action")
        PAYOFF = "payoff", _("Paid off")
        SUSPENSION = "suspension", _("Restrictions suspended")

    # written in bulk by the restriction sweep: no index a query does not use
    created_at = models.DateTimeField(auto_now_add=True)
    # stage_change_day (lender, business_date) serves lookups by lender
    # A copy of the parent's lender, for scoping queries; the parent's own foreign key
    # already guarantees the lender exists, so no second check on each bulk-written row.
    lender = models.ForeignKey(
        "lenders.Lender",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # written in bulk for loans the sweep holds locked, and loans are never deleted
    # (loan_never_deleted): no foreign-key check on each row
    loan = models.ForeignKey(
        Loan, on_delete=models.PROTECT, related_name="stage_changes", db_constraint=False
    )
    from_stage = models.CharField(max_length=12, choices=Stage.choices)
    to_stage = models.CharField(max_length=12, choices=Stage.choices)
    cause = models.CharField(max_length=10, choices=Cause.choices)
    days_overdue = models.PositiveIntegerField(help_text=_("On the business date."))
    business_date = models.DateField(help_text=_("The lender's local date of the change."))
    # a copy of the loan's pinned version, which the loan's own foreign key guarantees; no
    # index: no query looks changes up by version
    policy_version = models.ForeignKey(
        "lenders.RestrictionPolicyVersion",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    device_version = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("The desired-state version written for the phone.")
    )

    class Meta:
        ordering = ("loan", "created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "business_date"],
                condition=Q(cause="sweep"),
                name="stage_change_one_sweep_per_day",
            ),
        ]
        indexes = [models.Index(fields=["lender", "business_date"], name="stage_change_day")]
        triggers = [
            pgtrigger.Protect(
                name="stage_change_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]


class LoanPause(BaseModel):
    """A bounded stop to escalation: a promise to pay, a hardship pause, a legal hold.

    While active it keeps the loan at ``reminder`` at most. A promise is
    active at once; a hardship pause waits for a supervisor's approval; a
    legal hold or dispute freeze is set by a supervisor. At most one open
    pause of each kind per loan.
    """

    lender_path: ClassVar[str] = "lender"

    class Kind(models.TextChoices):
        PROMISE = "promise", _("Promise to pay")
        HARDSHIP = "hardship", _("Hardship pause")
        LEGAL_HOLD = "legal_hold", _("Legal hold or dispute freeze")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Waiting for approval")
        ACTIVE = "active", _("Active")
        REJECTED = "rejected", _("Rejected")
        KEPT = "kept", _("Kept")
        BROKEN = "broken", _("Broken")
        ENDED = "ended", _("Ended")

    OPEN: ClassVar[tuple[str, ...]] = (Status.REQUESTED, Status.ACTIVE)

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="pauses")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"), help_text=_("The last day of the pause, included."))
    promised_amount = money_field(_("promised amount"), null=True, blank=True)
    reason = models.TextField(_("reason"))
    requested_by = models.CharField(max_length=80, help_text=_("actor type and id"))
    decided_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "kind"],
                condition=Q(status__in=("requested", "active")),
                name="pause_one_open_per_kind",
            ),
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="pause_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(promised_amount__isnull=True) | Q(promised_amount__gt=0),
                name="pause_promised_amount_positive",
            ),
        ]
        indexes = [
            models.Index(
                fields=["loan", "starts_on", "ends_on"],
                condition=Q(status="active"),
                name="pause_active",
            ),
        ]
        triggers = [
            _marks_its_loan("pause_marks_its_loan", operation=pgtrigger.Insert | pgtrigger.Update)
        ]


class ManualLock(BaseModel):
    """An agent's request to lock a late loan's phone now, before the ladder would: a second
    person (a supervisor or the lender's admin, not the requester) approves it. Approved, the
    loan goes to ``lock`` until a payment, a pause or a lift lowers it."""

    lender_path: ClassVar[str] = "lender"
    EXPIRES_AFTER: ClassVar[timedelta] = timedelta(hours=24)

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Waiting for a second person")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        EXPIRED = "expired", _("Expired")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="manual_locks")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    reason = models.TextField(_("reason"))
    # None: asked by the lender's own system through the lender API (the audit names its key)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(_("decision reason"), blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["loan"],
                condition=models.Q(status="requested"),
                name="manual_lock_one_open_per_loan",
            ),
            models.CheckConstraint(
                condition=models.Q(status="requested") | models.Q(decided_at__isnull=False),
                name="manual_lock_decided_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"manual lock of {self.loan_id} ({self.status})"


class RestrictionSuspension(BaseModel):
    """A stop to every new restriction, for one lender or for every lender of a country: a
    regulator's order, an outage, a disaster.

    While it stands the sweep raises no loan and no phone is locked by hand; with
    ``lower_to_reminder`` every current restriction above ``reminder`` is lowered to it when it
    starts. A platform operator suspends a country or a lender, a lender's admin their own
    lender. Lifted (with a reason), never deleted; both audited.
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey(
        "lenders.Lender", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    country = models.CharField(_("country"), max_length=2, blank=True)
    reason = models.TextField(_("reason"))
    lower_to_reminder = models.BooleanField(
        _("lower current restrictions to reminders"), default=False
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lift_reason = models.TextField(_("why it was lifted"), blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(lender__isnull=False, country="")
                | Q(lender__isnull=True, country__regex=r"^[A-Z]{2}$"),
                name="suspension_one_scope",
            ),
            models.UniqueConstraint(
                fields=["lender"],
                condition=Q(lifted_at__isnull=True, lender__isnull=False),
                name="suspension_one_open_per_lender",
            ),
            models.UniqueConstraint(
                fields=["country"],
                condition=Q(lifted_at__isnull=True, lender__isnull=True),
                name="suspension_one_open_per_country",
            ),
            models.CheckConstraint(
                condition=Q(lifted_at__isnull=True) | Q(lifted_by__isnull=False),
                name="suspension_lifted_by_someone",
            ),
        ]
        triggers = [pgtrigger.Protect(name="suspension_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"suspension of {self.lender_id or self.country}"


class SupportPin(BaseModel):
    """A support PIN asked for by an agent, against the challenge the phone's lock screen shows.

    Stored as its challenge, never the PIN (made again from the phone's secret). Issued at
    once when a payment was recorded since the phone was locked; otherwise it waits for a
    second person, a supervisor of the lender, who approves it and reads it out.
    """

    lender_path: ClassVar[str] = "lender"

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Waiting for a supervisor")
        ISSUED = "issued", _("Issued")
        REJECTED = "rejected", _("Rejected")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="support_pins")
    device = models.ForeignKey("devices.Device", on_delete=models.PROTECT, related_name="+")
    challenge = models.CharField(max_length=6)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    payment_since_lock = models.BooleanField()
    issued_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    EXPIRES_AFTER = timedelta(hours=1)  # a request no supervisor decided in time is void

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(challenge__regex=r"^[0-9]{6}$"), name="support_pin_challenge_6_digits"
            ),
            models.CheckConstraint(
                condition=Q(payment_since_lock=True)
                | ~Q(status="issued")
                | Q(decided_by__isnull=False),
                name="support_pin_two_people_without_payment",
            ),
        ]
        indexes = [models.Index(fields=["requested_by", "created_at"], name="support_pin_by_agent")]

    def __str__(self) -> str:
        return f"support PIN for {self.challenge} · {self.get_status_display()}"


class InboundMessage(BaseModel):
    """A text a customer sent the lender's number or WhatsApp account, kept once per message
    of its provider (a callback delivered twice is answered once: ``inbound_message_once``).

    A text that is one of the few keywords (the balance, a link to pay, a promise, help) is
    answered at once (``apps.collections.services.replies``); anything else waits for an
    agent in the loan list's "Messages to answer" work queue until one marks it handled. The
    text is the customer's own: the lender's agents read it here, and it never reaches a log
    or an audit event.
    """

    lender_path: ClassVar[str] = "lender"

    class Intent(models.TextChoices):
        BALANCE = "balance", _("The balance")
        PAY = "pay", _("A link to pay")
        PROMISE = "promise", _("A promise to pay")
        HELP = "help", _("Help")
        OTHER = "other", _("Something else")

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        WHATSAPP = "whatsapp", _("WhatsApp")
        VOICE = "voice", _("Voice call (a key pressed)")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="inbound_messages")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    provider = models.CharField(_("provider"), max_length=20)
    provider_ref = models.CharField(max_length=200)
    text = models.TextField(_("text"))
    received_at = models.DateTimeField(_("received"))
    intent = models.CharField(_("asks for"), max_length=10, choices=Intent.choices)
    # the kind of message that answered it (a MessageTemplate kind), "" when none did; and
    # why a promise was refused (a key of apps.lenders.messages.PROMISE_REFUSALS)
    answer = models.CharField(_("answered with"), max_length=20, blank=True)
    refusal = models.CharField(_("refused because"), max_length=20, blank=True)
    needs_agent = models.BooleanField(_("for an agent"), default=False)
    handled_at = models.DateTimeField(_("handled"), null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("handled by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    handled_note = models.TextField(_("what was done"), blank=True)

    class Meta:
        verbose_name = _("message from a customer")
        verbose_name_plural = _("messages from customers")
        ordering = ("-received_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider", "provider_ref"], name="inbound_message_once"
            ),
            models.CheckConstraint(
                condition=Q(handled_at__isnull=True) | Q(needs_agent=True),
                name="inbound_message_handled_is_for_an_agent",
            ),
            models.CheckConstraint(
                condition=Q(handled_at__isnull=True, handled_by__isnull=True)
                | Q(handled_at__isnull=False, handled_by__isnull=False),
                name="inbound_message_handled_by_someone",
            ),
        ]
        indexes = [
            # the work queue: loans with a message no agent has handled yet
            models.Index(
                fields=["loan"],
                condition=Q(needs_agent=True, handled_at__isnull=True),
                name="inbound_message_waiting",
            ),
            # the answers a customer was sent in the last day (REPLIES_PER_DAY)
            models.Index(fields=["customer", "created_at"], name="inbound_message_customer_day"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.received_at:%Y-%m-%d %H:%M}"


class FundsAlert(BaseModel):
    """An alert from the customer's account-information provider that money arrived in their
    account, kept once per ``webhook_id`` (a replay finds it: ``funds_alert_once``), with what
    became of it (``outcome``): a link to pay the amount due sent, or why not.

    Only an alert whose signature held is kept; the customer and loan are those the consent
    it names leads to (none for an unknown reference).
    """

    lender_path: ClassVar[str] = "lender"

    class Outcome(models.TextChoices):
        SENT = "sent", _("Link to pay sent")
        SUPPRESSED = "suppressed", _("Not sent: weekly contact limit")
        ALREADY_TODAY = "already_today", _("Not sent: one was sent today")
        OUTSIDE_HOURS = "outside_hours", _("Not sent: outside contact hours")
        UNKNOWN_CUSTOMER = "unknown_customer", _("Ignored: no such customer")
        CONSENT_EXPIRED = "consent_expired", _("Ignored: the consent expired")
        CONSENT_REVOKED = "consent_revoked", _("Ignored: the consent was withdrawn")
        NO_LOAN = "no_loan", _("Ignored: no loan")
        LOAN_CLOSED = "loan_closed", _("Ignored: the loan is paid off or released")
        LOAN_PAUSED = "loan_paused", _("Ignored: the loan is paused")
        LOAN_CURRENT = "loan_current", _("Ignored: nothing is due")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    loan = models.ForeignKey(
        Loan, on_delete=models.PROTECT, null=True, blank=True, related_name="funds_alerts"
    )
    webhook_id = models.CharField(max_length=100)
    provider = models.CharField(_("provider"), max_length=40)
    reference = models.CharField(max_length=40)
    available = money_field(_("available"))
    currency = models.CharField(max_length=3)
    observed_at = models.DateTimeField(_("seen"))
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    amount_due = money_field(_("amount due"), null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["lender", "webhook_id"], name="funds_alert_once"),
        ]
        indexes = [models.Index(fields=["loan", "created_at"], name="funds_alert_loan")]
