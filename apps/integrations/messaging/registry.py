"""Which provider sends a lender's messages on each channel, the adapter for it, and where
the providers call back.

``messaging_adapter_for`` builds the adapter of the lender's account in use on a channel
from its settings and its opened secrets; ``messaging_callback_adapter`` the adapter of the
lender's account with one provider, in use or not (a message sent before the lender
switched providers still reports its delivery). ``messaging_callback_url`` is the public
address a provider calls back, on the product's public address like the payment providers'.
"""

from __future__ import annotations

from collections.abc import Mapping

from apps.integrations.messaging.africastalking import AfricasTalkingAccount, AfricasTalkingAdapter
from apps.integrations.messaging.africastalking import Route as AfricasTalkingRoute
from apps.integrations.messaging.base import Channel, MessagingAdapter
from apps.integrations.messaging.paths import callback_path
from apps.integrations.messaging.twilio_sms import Route as TwilioRoute
from apps.integrations.messaging.twilio_sms import TwilioAccount, TwilioSmsAdapter
from apps.integrations.messaging.whatsapp import (
    WHATSAPP,
    whatsapp_adapter_for,
    whatsapp_adapter_of,
    whatsapp_webhook_url,
)
from apps.integrations.models import CHANNEL_PROVIDERS, ProviderAccount
from apps.integrations.payments.credentials import unseal
from apps.integrations.payments.registry import callback_base_url
from apps.integrations.payments.signing import path_token_for
from apps.integrations.selectors import (
    provider_account_by_slug,
    provider_account_get,
    provider_account_in_use_among,
)
from apps.lenders.models import Lender

AFRICASTALKING = ProviderAccount.Provider.AFRICASTALKING.value
TWILIO = ProviderAccount.Provider.TWILIO.value

# the callbacks each provider makes (the last segment of their path)
ROUTES: Mapping[str, tuple[str, ...]] = {
    AFRICASTALKING: tuple(AfricasTalkingRoute),
    TWILIO: tuple(TwilioRoute),
}


def _adapter(account: ProviderAccount) -> MessagingAdapter:
    secrets = unseal(account.sealed_secrets)
    settings = account.settings
    if account.provider == AFRICASTALKING:
        return AfricasTalkingAdapter(
            AfricasTalkingAccount(
                username=str(settings.get("username", "")),
                api_key=secrets.get("api_key", ""),
                sender_id=str(settings.get("sender_id", "")),
            ),
            lender_slug=account.lender.slug,
        )
    if account.provider == TWILIO:
        return TwilioSmsAdapter(
            TwilioAccount(
                account_sid=str(settings.get("account_sid", "")),
                auth_token=secrets.get("auth_token", ""),
                from_number=str(settings.get("from_number", "")),
                messaging_service_sid=str(settings.get("messaging_service_sid", "")),
            )
        )
    raise ValueError(f"{account.provider} is not a messaging provider")


def messaging_adapter_for(*, lender_id: int, channel: str) -> MessagingAdapter | None:
    """The adapter of the lender's account in use on ``channel`` (``Channel``: SMS through
    Africa's Talking or Twilio, WhatsApp), built with its opened secrets; None when the
    lender has none in use. ``CredentialsUnreadable`` when no configured key opens its
    secrets."""
    if channel == Channel.WHATSAPP:
        return whatsapp_adapter_for(lender_id=lender_id)
    account = provider_account_in_use_among(
        lender_id=lender_id, providers=CHANNEL_PROVIDERS.get(channel, ())
    )
    return _adapter(account) if account is not None else None


def messaging_callback_adapter(*, lender_id: int, provider: str) -> MessagingAdapter | None:
    """The adapter that reads ``provider``'s callbacks to the lender: its account with
    ``provider``, in use or not (WhatsApp's: in use); None when the lender has none (or
    ``provider`` is not a messaging provider). ``CredentialsUnreadable`` as
    ``messaging_adapter_for``."""
    if provider == WHATSAPP:
        return whatsapp_adapter_for(lender_id=lender_id)
    if provider not in ROUTES:
        return None
    account = provider_account_get(lender_id=lender_id, provider=provider)
    return _adapter(account) if account is not None else None


def messaging_callback_target(
    *, lender_slug: str, provider: str
) -> tuple[Lender, MessagingAdapter] | None:
    """The lender ``lender_slug`` and the adapter that reads ``provider``'s callbacks to it,
    from one query (as ``messaging_callback_adapter``: an account in use or not, WhatsApp's
    in use); None when there is no such lender or account."""
    if provider != WHATSAPP and provider not in ROUTES:
        return None
    account = provider_account_by_slug(lender_slug=lender_slug, provider=provider)
    if account is None or (provider == WHATSAPP and not account.enabled):
        return None
    adapter = whatsapp_adapter_of(account) if provider == WHATSAPP else _adapter(account)
    return account.lender, adapter


def messaging_callback_url(*, provider: str, lender_slug: str, route: str) -> str:
    """The public address ``provider`` calls back for ``lender_slug`` with ``route``'s
    callbacks (``delivery``, ``inbound``; Africa's Talking's ``optout`` too). Africa's
    Talking signs nothing: its paths carry the lender's secret token. WhatsApp has one
    address for everything (``route`` ""). ValueError for a route the provider does not
    call."""
    if provider == WHATSAPP and not route:
        return whatsapp_webhook_url(lender_slug=lender_slug)
    if route not in ROUTES.get(provider, ()):
        raise ValueError(f"{provider!r} makes no {route!r} callback")
    token = (
        path_token_for(lender_slug=lender_slug, provider=provider)
        if provider == AFRICASTALKING
        else ""
    )
    path = callback_path(provider=provider, lender_slug=lender_slug, route=route, token=token)
    return f"{callback_base_url()}{path}"
