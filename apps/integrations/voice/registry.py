"""A lender's voice account in use: the adapter that places its calls, the stages of the ladder
it calls at, the number an agent answers on, and where Twilio calls back about each call.

``/api/voice/v1/twilio/<lender>/<call id>/<route>/``: ``gather`` takes the key pressed (the
call's TwiML posts it there), ``status`` how the call ended. Both are signed by Twilio.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.integrations.messaging.twilio_sms import TwilioAccount
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.credentials import unseal
from apps.integrations.payments.registry import callback_base_url
from apps.integrations.selectors import provider_account_by_slug, provider_account_get
from apps.integrations.voice.twilio_voice import TwilioVoiceAdapter

TWILIO_VOICE = ProviderAccount.Provider.TWILIO_VOICE.value
PATH_PREFIX = "/api/voice/v1"
ROUTES = ("gather", "status")


@dataclass(frozen=True, slots=True)
class VoiceAccount:
    lender_id: int
    lender_slug: str
    adapter: TwilioVoiceAdapter
    stages: frozenset[str]
    agent_number: str


def _voice_account(account: ProviderAccount) -> VoiceAccount:
    settings = account.settings
    adapter = TwilioVoiceAdapter(
        TwilioAccount(
            account_sid=str(settings.get("account_sid", "")),
            auth_token=unseal(account.sealed_secrets).get("auth_token", ""),
            from_number=str(settings.get("from_number", "")),
        )
    )
    stages = frozenset(s for s in str(settings.get("voice_stages", "")).split(",") if s)
    return VoiceAccount(
        lender_id=account.lender_id,
        lender_slug=account.lender.slug,
        adapter=adapter,
        stages=stages,
        agent_number=str(settings.get("agent_number", "")),
    )


def voice_account_for(*, lender_id: int) -> VoiceAccount | None:
    """The lender's voice account in use, its secrets opened; None without one."""
    account = provider_account_get(lender_id=lender_id, provider=TWILIO_VOICE)
    if account is None or not account.enabled:
        return None
    return _voice_account(account)


def voice_account_by_slug(*, lender_slug: str) -> VoiceAccount | None:
    """The voice account of the lender ``lender_slug`` (in use or not: a call placed before it
    was turned off still reports), for its callbacks; None without one."""
    account = provider_account_by_slug(lender_slug=lender_slug, provider=TWILIO_VOICE)
    return _voice_account(account) if account is not None else None


def voice_callback_url(*, lender_slug: str, call_id: int, route: str) -> str:
    if route not in ROUTES:
        raise ValueError(f"voice calls make no {route!r} callback")
    return f"{callback_base_url()}{PATH_PREFIX}/twilio/{lender_slug}/{call_id}/{route}/"
