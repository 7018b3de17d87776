"""The SMS gateway seam: a Protocol, chosen by the SMS_GATEWAY_CLASS setting."""

from __future__ import annotations

import logging
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsGateway(Protocol):
    def send(self, *, to: str, body: str) -> str:
        """Send ``body`` to the E.164 number ``to``; return the provider's message id."""
        ...


def get_sms_gateway() -> SmsGateway:
    return import_string(settings.SMS_GATEWAY_CLASS)()  # type: ignore[no-any-return]  # chosen by setting


def sms_send_quietly(*, to: str, body: str) -> bool:
    """Send, and on a gateway failure log it (the error's kind only: never the number or the
    text) instead of raising; returns whether the gateway took the message. For a send
    after commit whose caller must not answer differently when it fails."""
    try:
        get_sms_gateway().send(to=to, body=body)
    except Exception as exc:  # the provider is down or refused it
        logger.warning("sms not sent: %s", type(exc).__name__)
        return False
    return True


class ConsoleSmsGateway:
    """The demo's gateway: prints the message (the demo has no SMS provider).

    It prints to the console, not to the log, so codes never reach log storage.
    """

    sent = 0

    def send(self, *, to: str, body: str) -> str:
        ConsoleSmsGateway.sent += 1
        print(f"[demo SMS to ...{to[-4:]}] {body}", flush=True)  # noqa: T201  (the demo's only channel)
        return f"console-{ConsoleSmsGateway.sent}"
