from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class ProviderAccount(BaseModel):
    """A lender's account with a payment provider: which provider, whether it is used, its
    public settings (a shortcode, an environment) and its secrets, sealed at rest
    (``apps.integrations.payments.credentials``) and never shown back.

    Written only through ``provider_account_save``; ``secret_names`` says which secrets are
    set without opening them.
    """

    lender_path: ClassVar[str] = "lender"

    class Provider(models.TextChoices):
        GENERIC = "generic", _("Signed webhook (any provider)")
        MPESA = "mpesa", _("M-Pesa (Safaricom Daraja)")
        STRIPE = "stripe", _("Stripe (cards, OXXO)")
        WHATSAPP = "whatsapp", _("WhatsApp Business (Cloud API)")

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
        verbose_name = _("payment provider account")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "provider"], name="provider_account_one_per_lender"
            )
        ]

    def __str__(self) -> str:
        return self.get_provider_display()
