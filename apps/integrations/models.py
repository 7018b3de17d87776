from typing import ClassVar

from django.db import models
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
