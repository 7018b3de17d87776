"""Which providers a lender takes money through, and the adapter for each.

``adapter_for`` builds a provider's adapter from the lender's provider account (its
settings and its opened secrets). The demo checkout and the generic signed webhook need
no account. ``callback_url`` is the public address a provider calls back.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.base import PaymentAdapter
from apps.integrations.payments.credentials import unseal
from apps.integrations.payments.generic import GenericAdapter
from apps.integrations.payments.mpesa import MpesaAccount, MpesaAdapter
from apps.integrations.payments.signing import path_token_for
from apps.integrations.payments.stripe_checkout import StripeAdapter
from apps.integrations.selectors import (
    provider_account_for_lender_slug,
    provider_account_get,
    provider_account_in_use,
    providers_in_use,
)

MPESA = ProviderAccount.Provider.MPESA.value
STRIPE = ProviderAccount.Provider.STRIPE.value


class ProviderNotConfigured(DomainError):
    code, http_status = "provider_not_configured", 409
    default_message = _("This lender takes no payments through this provider.")


def providers_enabled(*, lender_id: int) -> list[str]:
    """The providers the lender has an account in use with (M-Pesa first, then Stripe)."""
    found = providers_in_use(lender_id=lender_id, providers=(MPESA, STRIPE))
    return [p for p in (MPESA, STRIPE) if p in found]


def adapter_for(
    *, lender_id: int, lender_slug: str, provider: str, in_use_only: bool = True
) -> PaymentAdapter:
    """The adapter of the lender's account with ``provider`` (the generic signed webhook for a
    name of PAYMENTS_PROVIDERS); ProviderNotConfigured when the lender has none in use
    (CredentialsUnreadable when no configured key opens it)."""
    if provider in settings.PAYMENTS_PROVIDERS and provider not in (MPESA, STRIPE):
        # the generic signed webhook: its secret is derived, no account holds it
        return GenericAdapter(provider=provider, lender_slug=lender_slug)
    # a payment started before the lender turned the provider off still calls back, and is
    # still asked about: only a new payment needs the account in use
    if in_use_only:
        account = provider_account_in_use(lender_id=lender_id, provider=provider)
    else:
        account = provider_account_get(lender_id=lender_id, provider=provider)
    if account is None:
        raise ProviderNotConfigured(provider=provider)
    return _adapter(account, provider=provider, lender_slug=lender_slug)


def adapter_for_callback(*, lender_slug: str, provider: str) -> tuple[int, PaymentAdapter]:
    """The lender ``lender_slug`` names (its id) and the adapter of its account with
    ``provider`` (M-Pesa or Stripe), in or out of use (``adapter_for(in_use_only=False)``),
    found in one round trip: a provider callback's first read. ProviderNotConfigured when
    the slug names no lender or the lender has no such account."""
    account = provider_account_for_lender_slug(lender_slug=lender_slug, provider=provider)
    if account is None:
        raise ProviderNotConfigured(provider=provider)
    return account.lender_id, _adapter(account, provider=provider, lender_slug=lender_slug)


def _adapter(account: ProviderAccount, *, provider: str, lender_slug: str) -> PaymentAdapter:
    """The adapter of ``account``: its settings, its secrets opened."""
    secrets = unseal(account.sealed_secrets)
    if provider == MPESA:
        return MpesaAdapter(
            MpesaAccount(
                shortcode=str(account.settings.get("shortcode", "")),
                environment=str(account.settings.get("environment") or "sandbox"),
                consumer_key=secrets.get("consumer_key", ""),
                consumer_secret=secrets.get("consumer_secret", ""),
                passkey=secrets.get("passkey", ""),
            ),
            lender_slug=lender_slug,
        )
    if provider == STRIPE:
        return StripeAdapter(
            secret_key=secrets.get("secret_key", ""),
            webhook_secret=secrets.get("webhook_secret", ""),
        )
    raise ProviderNotConfigured(provider=provider)


def callback_base_url() -> str:
    """The product's public address, where every provider calls back (payments and
    messaging): ``PAYMENTS_CALLBACK_BASE_URL``, the demo's by default."""
    return (settings.PAYMENTS_CALLBACK_BASE_URL or settings.DEMO_BASE_URL).rstrip("/")


def callback_url(*, provider: str, lender_slug: str, route: str = "") -> str:
    """The public address ``provider`` calls back for ``lender_slug`` (``route``: which of
    Daraja's callbacks). Daraja refuses an address with "mpesa" in it: the path says
    "daraja"."""
    base = callback_base_url()
    if provider == MPESA:
        path = reverse(
            "payments-api:daraja",
            kwargs={
                "lender_slug": lender_slug,
                "token": path_token_for(lender_slug=lender_slug, provider=MPESA),
                "route": route,
            },
        )
    else:
        path = reverse(
            "payments-api:provider", kwargs={"lender_slug": lender_slug, "provider": provider}
        )
    return f"{base}{path}"
