from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel

# the providers of each messaging channel: a lender has one of a channel's in use at most
SMS_PROVIDERS = ("africastalking", "twilio")
CHANNEL_PROVIDERS: dict[str, tuple[str, ...]] = {"sms": SMS_PROVIDERS, "whatsapp": ("whatsapp",)}


class ProviderAccount(BaseModel):
    """A lender's account with a payment or messaging provider: which provider, whether it is
    used, its public settings (a shortcode, a sender id) and its secrets, sealed at rest
    (``apps.integrations.payments.credentials``) and never shown back.

    Written only through ``provider_account_save``; ``secret_names`` says which secrets are
    set without opening them. A lender sends its SMS through one provider: at most one of
    ``SMS_PROVIDERS`` is in use (``provider_account_one_sms_in_use``).
    """

    lender_path: ClassVar[str] = "lender"

    class Provider(models.TextChoices):
        GENERIC = "generic", _("Signed webhook (any provider)")
        MPESA = "mpesa", _("M-Pesa (Safaricom Daraja)")
        STRIPE = "stripe", _("Stripe (cards, OXXO)")
        WHATSAPP = "whatsapp", _("WhatsApp Business (Cloud API)")
        AFRICASTALKING = "africastalking", _("SMS: Africa's Talking")
        TWILIO = "twilio", _("SMS: Twilio")
        TWILIO_VOICE = "twilio_voice", _("Voice reminders: Twilio")
        FUNDS_ALERTS = "funds_alerts", _("Funds alerts: account-information provider")
        PLAID = "plaid", _("Funds alerts: Plaid")

    lender = models.ForeignKey(
        "lenders.Lender", on_delete=models.PROTECT, related_name="provider_accounts"
    )
    provider = models.CharField(_("provider"), max_length=20, choices=Provider.choices)
    enabled = models.BooleanField(_("in use"), default=False)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    sealed_secrets = models.TextField(blank=True, editable=False)
    secret_names = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        ordering = ("lender", "provider")
        verbose_name = _("provider account")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider"], name="provider_account_one_per_lender"
            ),
            # the service says so first (provider_account_check); this holds against a race
            models.UniqueConstraint(
                fields=["lender"],
                condition=models.Q(enabled=True, provider__in=SMS_PROVIDERS),
                name="provider_account_one_sms_in_use",
            ),
        ]

    def __str__(self) -> str:
        return self.get_provider_display()


class WebhookEndpoint(BaseModel):
    """A lender's address for its public events (``apps.audit.public``): which types it takes
    (none listed: every type), whether it is in use, and its signing secrets, sealed at rest
    as a provider account's (``apps.integrations.payments.credentials``) and shown once.

    During a rotation the previous secret signs too, until ``previous_until``: a receiver
    that still checks with the old one keeps verifying. Written only through
    ``apps.integrations.services.webhooks``."""

    lender_path: ClassVar[str] = "lender"

    class Disabled(models.TextChoices):
        NO = "", _("In use")
        BY_LENDER = "by_lender", _("Turned off by the lender")
        GONE = "gone", _("The receiver answered 410 Gone")
        FAILING = "failing", _("Failing for a day")

    lender = models.ForeignKey(
        "lenders.Lender", on_delete=models.PROTECT, related_name="webhook_endpoints"
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(
        _("event types"), default=list, blank=True, help_text=_("None chosen: every type.")
    )
    enabled = models.BooleanField(_("in use"), default=True)
    disabled_reason = models.CharField(
        _("why not in use"), max_length=10, choices=Disabled.choices, blank=True
    )
    sealed_secrets = models.TextField(editable=False)
    previous_until = models.DateTimeField(null=True, blank=True, editable=False)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ("lender", "id")
        verbose_name = _("webhook endpoint")

    def __str__(self) -> str:
        return self.url


class WebhookCursor(BaseModel):
    """How far along a lender's audit chain its events were projected into deliveries."""

    lender_path: ClassVar[str] = "lender"

    lender = models.OneToOneField("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.lender_id} @ {self.last_seq}"


class WebhookDelivery(BaseModel):
    """One public event for one endpoint: sent until the receiver answers 2xx, in order per
    loan (``loan_key``), retried with backoff for ``WEBHOOK_RETRY_FOR``; the delivery log.

    Derived from the audit chain (``event_id`` is the audit event's id, ``seq`` its place in
    the lender's chain), once per (endpoint, event) (``webhook_delivery_once``)."""

    lender_path: ClassVar[str] = "lender"

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    lender = models.ForeignKey(
        "lenders.Lender", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    event_id = models.BigIntegerField(_("event"))
    seq = models.BigIntegerField()
    event_type = models.CharField(_("event type"), max_length=40)
    # the loan the event is about (0: none): deliveries of one key go out in chain order
    loan_key = models.BigIntegerField(default=0)
    payload = models.JSONField()
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_from = models.DateTimeField(help_text=_("Retries stop WEBHOOK_RETRY_FOR after this."))
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(_("last answer"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_delivery_once"),
        ]
        indexes = [
            # what the sender claims, oldest first ...
            models.Index(fields=["id"], condition=Q(status="pending"), name="webhook_delivery_due"),
            # ... but not behind one of its loan's still waiting (a retry, another sender's
            # claim): the few pending rows not due yet, found without reading the backlog
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.endpoint_id}"
