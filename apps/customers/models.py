from typing import ClassVar

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class Customer(BaseModel):
    """A lender's customer: one per national id and one per mobile number at each lender.

    The number is how the customer logs in to their own pages (a code by SMS), so two
    customers on one number would let one of them see the other's loans
    (tests/customers/test_services_identity.py).
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="customers")
    full_name = models.CharField(_("full name"), max_length=200)
    phone = models.CharField(_("phone"), max_length=20, help_text=_("E.164, e.g. +254712345678"))
    national_id = models.CharField(_("national id"), max_length=40)
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    locale = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )

    class Meta:
        ordering = ("lender", "full_name")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "national_id"], name="customer_national_id_unique_per_lender"
            ),
            models.UniqueConstraint(
                fields=["lender", "phone"], name="customer_phone_unique_per_lender"
            ),
            models.CheckConstraint(
                condition=models.Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"), name="customer_phone_e164"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name


class ConsentChallenge(BaseModel):
    """A one-time code sent to the customer's phone to confirm the terms shown.

    The code is bound to the exact text (by its hash): confirming other terms
    than the ones the code was sent for is refused.
    """

    lender_path: ClassVar[str] = "lender"
    MAX_ATTEMPTS: ClassVar[int] = 5

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="consent_challenges"
    )
    text_sha256 = models.CharField(max_length=64)
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)


class ConsentRecord(BaseModel):
    """The customer's recorded consent: the exact text shown, how it was given, by whom, where."""

    lender_path: ClassVar[str] = "lender"

    class Method(models.TextChoices):
        SMS_CODE = "sms_code", _("One-time code sent by SMS to the customer's phone")
        DEMO_SEED = "demo_seed", _("Demo data: no customer took part")
        LENDER_SYSTEM = "lender_system", _("Recorded by the lender's own system (lender API)")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="consents")
    text = models.TextField()
    text_version = models.CharField(max_length=40)
    text_sha256 = models.CharField(max_length=64)
    locale = models.CharField(max_length=10)
    method = models.CharField(max_length=20, choices=Method.choices)
    code_check = models.CharField(max_length=20, help_text=_("The result of the code check."))
    challenge = models.OneToOneField(
        ConsentChallenge, on_delete=models.PROTECT, related_name="record"
    )
    # no clerk and no shop: recorded by the lender's own system (method ``lender_system``)
    clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    shop = models.ForeignKey(
        "retailers.Shop", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="consent_record_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]


class CustomerLoginCode(BaseModel):
    """A one-time code sent by SMS that logs a customer in to their own pages.

    Only the code's hash is kept. A code works once, for ``LOGIN_CODE_TTL``.
    Wrong codes are recorded on it (``failures``, one ``CustomerLoginFailure``
    each); the lockout after ``LOGIN_MAX_FAILURES`` counts them per number
    (customers.services). Made after the answer to the request that asked for
    it, by a task: ``request_key`` is that request's, so a task run twice makes
    one code.
    """

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="login_codes")
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    failures = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)
    request_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["customer", "created_at"], name="login_code_recent")]


class CustomerLoginFailure(BaseModel):
    """A wrong code typed for a customer's login code, recorded after the answer (the answer
    to a wrong code does the same work for a customer's number and a stranger's). The
    ``attempt`` key makes the record once per try: a task run twice counts one failure."""

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    login_code = models.ForeignKey(
        CustomerLoginCode, on_delete=models.PROTECT, related_name="failed_tries"
    )
    attempt = models.UUIDField(unique=True, editable=False)


class AccountReadingConsent(BaseModel):
    """The customer's consent to let an account-information provider read their bank or
    mobile-money balance and tell the lender when money arrives (a funds alert).

    Recorded like the loan's consent (the exact text shown, its version and SHA-256, how it
    was given, when, from where), and bounded: it ends at ``expires_at`` (180 days by
    default, as open-banking rules allow, renewable by giving it again) or when the customer
    revokes it on their page. No funds alert is acted on without one in force
    (``account_reading_consent_in_force``). ``reference`` is the opaque id the provider
    knows the customer by and names in each alert: it says nothing about the customer.
    Never deleted; a revocation is recorded on the row, once.
    """

    lender_path: ClassVar[str] = "lender"

    class Method(models.TextChoices):
        SELF_SERVICE = "self_service", _("Given by the customer on their own page")
        DEMO_SEED = "demo_seed", _("Demo data: no customer took part")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="account_reading_consents"
    )
    reference = models.CharField(_("reference"), max_length=40, unique=True, editable=False)
    provider = models.CharField(_("provider"), max_length=40)
    text = models.TextField()
    text_version = models.CharField(max_length=40)
    text_sha256 = models.CharField(max_length=64)
    locale = models.CharField(max_length=10)
    method = models.CharField(max_length=20, choices=Method.choices)
    given_at = models.DateTimeField(_("given"))
    expires_at = models.DateTimeField(_("ends"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    class Meta:
        verbose_name = _("consent to account reading")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("given_at")),
                name="account_reading_consent_ends_after_given",
            )
        ]
        indexes = [
            models.Index(fields=["customer", "expires_at"], name="account_reading_customer"),
        ]
        triggers = [
            pgtrigger.Protect(name="account_reading_consent_kept", operation=pgtrigger.Delete)
        ]


class PlaidItem(BaseModel):
    """The Plaid Item (the customer's bank login at Plaid) a consent to account reading lets
    the lender watch: Plaid names it by ``item_id`` in each webhook, and ``sealed_access_token``
    (sealed at rest, ``apps.integrations.payments.credentials``; never shown, never logged)
    reads its balance. ``rule`` says when a balance is worth an alert: the available balance
    of one of its accounts covers the amount due. Ends with its consent: no balance is read
    for a consent expired or revoked (``apps.collections.services.funds_plaid``).
    """

    lender_path: ClassVar[str] = "lender"

    class Rule(models.TextChoices):
        COVERS_DUE = "covers_due", _("An account's available balance covers the amount due")

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    consent = models.OneToOneField(
        AccountReadingConsent, on_delete=models.PROTECT, related_name="plaid_item"
    )
    item_id = models.CharField(_("Plaid item"), max_length=100)
    sealed_access_token = models.TextField(editable=False)
    rule = models.CharField(
        _("alert when"), max_length=20, choices=Rule.choices, default=Rule.COVERS_DUE
    )

    class Meta:
        verbose_name = _("Plaid item")
        constraints = [
            models.UniqueConstraint(fields=["lender", "item_id"], name="plaid_item_one_per_lender")
        ]

    def __str__(self) -> str:
        return self.item_id
