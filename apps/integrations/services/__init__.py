"""Writes of the integrations: a lender's accounts with payment and messaging providers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.core.actor import Actor
from apps.core.audit import audit_record
from apps.integrations.events import IntegrationsAction
from apps.integrations.models import CHANNEL_PROVIDERS, ProviderAccount
from apps.integrations.payments.credentials import reseal, seal, unseal
from apps.integrations.payments.mpesa import MpesaAdapter, Route
from apps.integrations.payments.registry import MPESA, adapter_for, callback_url
from apps.integrations.selectors import providers_in_use
from apps.lenders.models import Lender

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@dataclass(frozen=True, slots=True)
class ProviderFields:
    """What a provider's account holds: public settings and sealed secrets, each with its
    check (a message for a value that does not pass). An account in use needs every setting
    but the ``optional`` ones (the adapter has a default, or goes without) and, of each group
    of ``one_of``, at least one."""

    settings: dict[str, Callable[[str], str | None]]
    secrets: dict[str, Callable[[str], str | None]]
    optional: frozenset[str] = field(default_factory=frozenset)
    one_of: tuple[tuple[str, ...], ...] = ()


def _matches(pattern: str, message: StrOrPromise) -> Callable[[str], str | None]:
    compiled = re.compile(pattern)
    return lambda value: None if compiled.fullmatch(value) else str(message)


PROVIDER_FIELDS: dict[str, ProviderFields] = {
    ProviderAccount.Provider.GENERIC: ProviderFields(settings={}, secrets={}),
    ProviderAccount.Provider.MPESA: ProviderFields(
        settings={
            "shortcode": _matches(r"[0-9]{5,7}", _("A paybill or till number: 5 to 7 digits.")),
            "environment": _matches(r"sandbox|production", _("Either sandbox or production.")),
        },
        secrets={
            "consumer_key": _matches(r"\S{8,200}", _("The app's consumer key from Daraja.")),
            "consumer_secret": _matches(r"\S{8,200}", _("The app's consumer secret.")),
            "passkey": _matches(r"\S{8,200}", _("The Lipa na M-Pesa Online passkey.")),
        },
    ),
    ProviderAccount.Provider.STRIPE: ProviderFields(
        settings={},
        secrets={
            "secret_key": _matches(
                r"(sk|rk)_(test|live)_[A-Za-z0-9]{8,200}",
                _("A secret or restricted key: sk_live_… or rk_live_… (sk_test_… to try)."),
            ),
            "webhook_secret": _matches(
                r"whsec_[A-Za-z0-9+/=]{8,200}", _("The endpoint's signing secret: whsec_….")
            ),
        },
    ),
    ProviderAccount.Provider.WHATSAPP: ProviderFields(
        settings={
            "phone_number_id": _matches(
                r"[0-9]{5,20}",
                _("The phone number's ID (WhatsApp Manager): digits, not the number itself."),
            ),
            "business_account_id": _matches(
                r"[0-9]{5,20}", _("The WhatsApp Business Account's ID: digits.")
            ),
            "graph_api_version": _matches(
                r"v[0-9]{1,2}\.0", _("A Graph API version such as v21.0 (blank: v21.0).")
            ),
            "message_template": _matches(
                r"[a-z0-9_]{1,512}",
                _("An approved template's name: lower-case letters, digits and underscores."),
            ),
        },
        secrets={
            "access_token": _matches(
                r"EAA[A-Za-z0-9]{20,1000}",
                _("A system user's permanent access token (Business settings): EAA…"),
            ),
            "app_secret": _matches(
                r"[0-9a-f]{32}",
                _("The Meta app's secret (App settings, Basic): 32 hexadecimal characters."),
            ),
            "verify_token": _matches(
                r"[!-~]{16,200}",
                _(
                    "A token of your choosing, 16 to 200 characters without spaces, typed the "
                    "same in the app's webhook settings."
                ),
            ),
        },
        optional=frozenset({"graph_api_version", "message_template"}),
    ),
    ProviderAccount.Provider.AFRICASTALKING: ProviderFields(
        settings={
            "username": _matches(
                r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
                _("The app's username at Africa's Talking (sandbox to try)."),
            ),
            "sender_id": _matches(
                r"[0-9]{3,8}|(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,11}",
                _(
                    "A registered sender id (up to 11 letters and digits, not only digits) or "
                    "a shortcode (3 to 8 digits); leave it empty for the shared sender."
                ),
            ),
        },
        secrets={
            "api_key": _matches(r"\S{16,200}", _("The app's API key from its dashboard.")),
        },
        optional=frozenset({"sender_id"}),
    ),
    ProviderAccount.Provider.TWILIO: ProviderFields(
        settings={
            "account_sid": _matches(
                r"AC[0-9a-fA-F]{32}", _("The account SID: AC and 32 hexadecimal digits.")
            ),
            "from_number": _matches(
                r"\+[1-9][0-9]{6,14}",
                _("The sending number in international format: + and its country code."),
            ),
            "messaging_service_sid": _matches(
                r"MG[0-9a-fA-F]{32}",
                _("A Messaging Service SID: MG and 32 hexadecimal digits."),
            ),
        },
        secrets={
            "auth_token": _matches(
                r"[0-9a-fA-F]{32}", _("The account's auth token: 32 hexadecimal digits.")
            ),
        },
        one_of=(("from_number", "messaging_service_sid"),),
    ),
    # the account's SID, number and token as the SMS account's fields (one Twilio account
    # may do both); the stages of the ladder whose customers get a call
    ProviderAccount.Provider.TWILIO_VOICE: ProviderFields(
        settings={
            "account_sid": _matches(
                r"AC[0-9a-fA-F]{32}", _("The account SID: AC and 32 hexadecimal digits.")
            ),
            "from_number": _matches(
                r"\+[1-9][0-9]{6,14}",
                _("The calling number in international format: + and its country code."),
            ),
            "voice_stages": _matches(
                r"(reminder|wallpaper|alarm|block_apps|lock)(,(reminder|wallpaper|alarm|block_apps|lock))*",
                _(
                    "Stages of the ladder, separated by commas: reminder, wallpaper, alarm, "
                    "block_apps, lock."
                ),
            ),
            "agent_number": _matches(
                r"\+[1-9][0-9]{6,14}",
                _("The number a customer who presses 9 is put through to: + and its country code."),
            ),
        },
        secrets={
            "auth_token": _matches(
                r"[0-9a-fA-F]{32}", _("The account's auth token: 32 hexadecimal digits.")
            ),
        },
        optional=frozenset({"agent_number"}),
    ),
    ProviderAccount.Provider.FUNDS_ALERTS: ProviderFields(
        settings={
            "aggregator": _matches(
                r"[A-Za-z0-9][A-Za-z0-9 .&'-]{1,39}",
                _("The account-information provider's name, as customers read it (Plaid)."),
            ),
        },
        secrets={
            "alerts_secret": _matches(
                r"whsec_[A-Za-z0-9+/=]{24,200}",
                _("The Standard Webhooks signing secret the alerts are signed with: whsec_…"),
            ),
        },
    ),
    ProviderAccount.Provider.PLAID: ProviderFields(
        settings={
            "environment": _matches(r"sandbox|production", _("Either sandbox or production.")),
        },
        secrets={
            "client_id": _matches(
                r"[0-9a-f]{24}", _("The team's client_id (Plaid dashboard, Keys): 24 hex digits.")
            ),
            "secret": _matches(
                r"[0-9a-f]{30}",
                _("The environment's secret (Plaid dashboard, Keys): 30 hex digits."),
            ),
        },
    ),
}


def _problems(
    values: dict[str, str], checks: dict[str, Callable[[str], str | None]]
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        if name not in checks:
            errors[name] = [str(_("This provider has no such field."))]
        elif value and (problem := checks[name](value)):
            errors[name] = [problem]
    return errors


def _rivals(provider: str) -> tuple[str, ...]:
    """The other providers of ``provider``'s messaging channel: one of them in use at most."""
    for providers in CHANNEL_PROVIDERS.values():
        if provider in providers:
            return tuple(p for p in providers if p != provider)
    return ()


def _channel_taken(*, lender_id: int, provider: str) -> str | None:
    """Why ``provider`` cannot be turned on for the lender: another provider of its channel
    (SMS) is in use; None when nothing stands in the way."""
    rivals = _rivals(provider)
    taken = sorted(providers_in_use(lender_id=lender_id, providers=rivals)) if rivals else []
    if not taken:
        return None
    return str(
        _(
            "%(other)s already sends this lender's messages: turn it off first "
            "(one provider per channel at a time)."
        )
        % {"other": ProviderAccount.Provider(taken[0]).label}
    )


def provider_account_check(
    *,
    provider: str,
    enabled: bool,
    settings: dict[str, str],
    secrets: dict[str, str],
    stored: list[str],
    lender_id: int | None = None,
) -> None:
    """``ValidationError`` (by field) unless ``settings`` and ``secrets`` are the provider's and
    each passes its check, and, to turn the account on, every setting it needs is given,
    every secret is given or ``stored`` (the names already set) and, given ``lender_id``, no
    other provider of its channel is in use for that lender (one SMS provider at a time)."""
    if provider not in PROVIDER_FIELDS:
        raise ValidationError({"provider": [str(_("Not a provider this product knows."))]})
    fields = PROVIDER_FIELDS[provider]
    settings = {k: v.strip() for k, v in settings.items()}
    secrets = {k: v.strip() for k, v in secrets.items()}
    errors = _problems(settings, fields.settings) | _problems(secrets, fields.secrets)
    if enabled:
        grouped = {n for group in fields.one_of for n in group}
        needed = [
            n
            for n in fields.settings
            if not settings.get(n) and n not in fields.optional and n not in grouped
        ]
        needed += [n for n in fields.secrets if not secrets.get(n) and n not in stored]
        for name in needed:
            errors.setdefault(name, [str(_("Needed before the provider is turned on."))])
        for group in fields.one_of:
            if not any(settings.get(n) for n in group):
                for name in group:
                    errors.setdefault(
                        name, [str(_("One of these is needed before the provider is turned on."))]
                    )
        taken = _channel_taken(lender_id=lender_id, provider=provider) if lender_id else None
        if taken:
            errors.setdefault("enabled", []).append(taken)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def provider_account_save(
    *,
    lender_id: int,
    provider: str,
    enabled: bool,
    settings: dict[str, str],
    secrets: dict[str, str],
    actor: Actor,
) -> ProviderAccount:
    """Create or change the lender's account with ``provider``.

    ``settings`` replace the public settings; each secret given non-empty replaces the stored
    one and an empty one keeps it (secrets are write-only: never read back to a page). Each
    value is checked against the provider's fields; an account is turned on only with every
    setting and secret it needs set, and (a messaging provider) with no other provider of its
    channel in use. Locks the lender (turning a messaging provider on: two admins turning on
    two SMS providers at once serialise there), then the account's row. Emits
    ``integrations.provider_account.saved`` with the public values old and new and the names
    of the secrets changed, never a secret."""
    if enabled and _rivals(provider):
        list(Lender.objects.select_for_update().filter(pk=lender_id).values_list("pk"))
    account = (
        ProviderAccount.objects.select_for_update()
        .filter(lender_id=lender_id, provider=provider)
        .first()
    ) or ProviderAccount(lender_id=lender_id, provider=provider)
    settings = {k: v.strip() for k, v in settings.items()}
    secrets = {k: v.strip() for k, v in secrets.items()}
    provider_account_check(
        provider=provider,
        enabled=enabled,
        settings=settings,
        secrets=secrets,
        stored=account.secret_names,
        lender_id=lender_id,
    )
    old = {"enabled": account.enabled, "settings": dict(account.settings)}
    given = {k: v for k, v in secrets.items() if v}
    # every secret typed again: the stored ones are not needed (nor opened, in case their
    # key was dropped too early: this is how such an account is mended)
    everything = set(PROVIDER_FIELDS[provider].secrets) <= set(given)
    stored = {} if everything else unseal(account.sealed_secrets)
    changed = sorted(k for k, v in given.items() if stored.get(k) != v)
    stored |= given
    kept = {k: v for k, v in settings.items() if v}
    if account.pk and not changed and old == {"enabled": enabled, "settings": kept}:
        return account  # nothing changed: nothing written, nothing audited
    account.enabled, account.settings = enabled, kept
    account.sealed_secrets, account.secret_names = seal(stored), sorted(stored)
    account.save()
    new = {"enabled": account.enabled, "settings": dict(account.settings)}
    audit_record(
        actor=actor,
        action=IntegrationsAction.PROVIDER_ACCOUNT_SAVED,
        target=account,
        data={"provider": provider, "old": old, "new": new, "secrets_changed": changed},
    )
    return account


@transaction.atomic
def provider_accounts_reseal(*, actor: Actor) -> int:
    """Seal every account's secrets again under the newest key of
    ``PAYMENTS_CREDENTIALS_KEYS`` (their values unchanged), so an older key can be dropped.
    Locks the accounts. Returns how many. Emits ``integrations.provider_account.resealed``
    per account (no value)."""
    done = 0
    for account in (
        ProviderAccount.objects.select_for_update().exclude(sealed_secrets="").order_by("pk")
    ):
        account.sealed_secrets = reseal(account.sealed_secrets)
        account.save(update_fields=["sealed_secrets", "updated_at"])
        audit_record(
            actor=actor,
            action=IntegrationsAction.PROVIDER_ACCOUNT_RESEALED,
            target=account,
            data={"provider": account.provider},
        )
        done += 1
    return done


def mpesa_callbacks_register(*, lender_id: int, lender_slug: str, actor: Actor) -> tuple[str, str]:
    """Tell M-Pesa where the lender's paybill sends its C2B validations and confirmations (the
    customer paying from the M-Pesa menu): the lender's secret callback paths. Safe to run
    again (Daraja keeps the last). ProviderNotConfigured without an M-Pesa account in use,
    ProviderError when Daraja refuses. Returns (confirmation URL, validation URL). Emits
    ``integrations.provider_account.callbacks_registered`` (the paths' token left out)."""
    adapter = adapter_for(lender_id=lender_id, lender_slug=lender_slug, provider=MPESA)
    if not isinstance(adapter, MpesaAdapter):  # pragma: no cover - the registry's promise
        raise TypeError("not an M-Pesa adapter")
    urls = (
        callback_url(provider=MPESA, lender_slug=lender_slug, route=Route.C2B_CONFIRMATION),
        callback_url(provider=MPESA, lender_slug=lender_slug, route=Route.C2B_VALIDATION),
    )
    adapter.register_c2b_urls(confirmation_url=urls[0], validation_url=urls[1])
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=IntegrationsAction.PROVIDER_CALLBACKS_REGISTERED,
            target=ProviderAccount.objects.get(lender_id=lender_id, provider=MPESA),
            data={"provider": MPESA, "shortcode": adapter.client.account.shortcode},
        )
    return urls


# the webhooks' services (a module of their own), under this package's name too
from apps.integrations.services.webhooks import (  # noqa: E402
    EndpointWithSecret,
    webhook_deliveries_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
    webhooks_dispatch,
)

__all__ = [
    "EndpointWithSecret",
    "webhook_deliveries_resend",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_secret_rotate",
    "webhook_endpoint_update",
    "webhooks_dispatch",
]
