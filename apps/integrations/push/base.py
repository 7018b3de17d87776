"""The push seam: wake a phone up so it pulls its desired state.

A push carries no command, only "sync" and the version to expect; the phone
then checks in. Losing one is therefore harmless beyond a delay, and the
gateway may send the same nudge twice.

With ``FCM_CREDENTIALS_FILE`` set the gateway is the class named by
``FCM_GATEWAY_CLASS`` (Firebase Cloud Messaging, ``apps.integrations.push.fcm``);
without it, the demo's logging gateway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

MAX_BATCH = 500  # FCM's limit for one send_each call


@dataclass(frozen=True, slots=True)
class PushMessage:
    device_id: int
    token: str
    version: int
    kind: str = "token"  # "token" (registration token) or "fid" (installation id)


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # quota or availability: try again later
    DEAD = "dead"  # the push address is gone for good
    FAILED = "failed"  # refused for another reason; retrying would not help


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: Outcome
    message_id: str = ""
    error_code: str = ""
    retry_after: float | None = None  # seconds, when the provider said so


class PushGateway(Protocol):
    def send(self, messages: list[PushMessage]) -> list[PushResult]:
        """Send at most MAX_BATCH messages; one result per message, in order."""
        ...


class LoggingPushGateway:
    """The demo's gateway: logs each nudge (device id and version only) and reports it sent."""

    def send(self, messages: list[PushMessage]) -> list[PushResult]:
        for message in messages:
            logger.info("push nudge device=%s version=%s", message.device_id, message.version)
        return [
            PushResult(Outcome.SENT, message_id=f"log-{m.device_id}-{m.version}") for m in messages
        ]


@cache
def get_push_gateway() -> PushGateway:
    """One gateway per process (firebase-admin keeps a connection pool per app)."""
    if settings.FCM_CREDENTIALS_FILE:
        return import_string(settings.FCM_GATEWAY_CLASS)(  # type: ignore[no-any-return]  # chosen by setting
            credentials_file=settings.FCM_CREDENTIALS_FILE,
            api_base=settings.FCM_API_BASE,
            ttl_seconds=settings.PUSH_TTL_SECONDS,
        )
    return LoggingPushGateway()
