"""Firebase Cloud Messaging through firebase-admin: data-only, high priority, collapsing.

Two settings aim it: ``FCM_CREDENTIALS_FILE`` (a service-account JSON; its
``token_uri`` is where access tokens come from) and ``FCM_API_BASE`` (Google's
endpoint unless a test or benchmark points it at a loopback fake).

firebase-admin is driven through its public ``messaging.send_each``. Two
attributes of its messaging service are set on purpose (pinned in
requirements.txt, covered by tests/devices/test_services_push.py):

* ``_fcm_url``, so the send URL follows ``FCM_API_BASE``;
* the HTTP adapter of its session for that base: one pooled connection per
  message of a batch, and no status retries, because the push relay owns
  retries (exponential backoff with jitter, each attempt in the delivery log)
  rather than sleeping inside a worker thread.
"""

from __future__ import annotations

import re
import threading
import urllib.request
import warnings
from datetime import timedelta
from typing import Any

import firebase_admin
import requests
from firebase_admin import credentials, exceptions, messaging
from urllib3.util import Retry

from apps.integrations.push.base import MAX_BATCH, Outcome, PushMessage, PushResult

GOOGLE_API_BASE = "https://fcm.googleapis.com"
COLLAPSE_KEY = "sync"

_DEAD = (messaging.UnregisteredError, messaging.SenderIdMismatchError)
_RETRY = (
    exceptions.ResourceExhaustedError,  # QuotaExceededError (429) is one
    exceptions.UnavailableError,
    exceptions.InternalError,
    exceptions.DeadlineExceededError,
    exceptions.UnknownError,  # transport failures surface as this
)


def _error_code(exc: exceptions.FirebaseError) -> str:
    """``QuotaExceededError`` -> ``quota_exceeded``: the delivery log's error code."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__.removesuffix("Error")).lower()


def _retry_after(exc: exceptions.FirebaseError) -> float | None:
    response = exc.http_response
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class FcmGateway:
    _lock = threading.Lock()

    def __init__(self, *, credentials_file: str, api_base: str, ttl_seconds: int) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        name = f"smartcollection-push:{credentials_file}:{api_base}"
        with self._lock:
            try:
                self.app = firebase_admin.get_app(name)
            except ValueError:
                self.app = firebase_admin.initialize_app(
                    credentials.Certificate(credentials_file),
                    options={"httpTimeout": 10},
                    name=name,
                )
                self._aim(api_base.rstrip("/"))

    def _aim(self, api_base: str) -> None:
        service: Any = messaging._get_messaging_service(self.app)
        service._fcm_url = f"{api_base}/v1/projects/{self.app.project_id}/messages:send"
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4,
            pool_maxsize=MAX_BATCH,
            max_retries=Retry(connect=1, read=1, status=0),
        )
        session = service._client.session
        session.mount(api_base, adapter)
        # Without proxy variables, reading the environment and ~/.netrc for every
        # message is a third of the sender's CPU; with them, they are honoured.
        session.trust_env = bool(urllib.request.getproxies())

    def message(self, push: PushMessage) -> messaging.Message:
        """Data only (the agent shows nothing itself), high priority, one pending per phone."""
        address = {"fid": push.token} if push.kind == "fid" else {"token": push.token}
        with warnings.catch_warnings():
            # firebase-admin 7 prefers fid; agents that report a registration token
            # are still addressed by it, which FCM accepts.
            warnings.simplefilter("ignore", DeprecationWarning)
            return messaging.Message(
                data={"type": "sync", "version": str(push.version)},
                android=messaging.AndroidConfig(
                    priority="high", ttl=self.ttl, collapse_key=COLLAPSE_KEY
                ),
                **address,
            )

    def send(self, messages: list[PushMessage]) -> list[PushResult]:
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages per call")
        if not messages:
            return []
        batch = messaging.send_each([self.message(m) for m in messages], app=self.app)
        return [self._result(response) for response in batch.responses]

    @staticmethod
    def _result(response: messaging.SendResponse) -> PushResult:
        if response.success:
            return PushResult(Outcome.SENT, message_id=response.message_id)
        exc = response.exception
        if isinstance(exc, _DEAD):
            return PushResult(Outcome.DEAD, error_code=_error_code(exc))
        if isinstance(exc, _RETRY):
            return PushResult(
                Outcome.RETRY, error_code=_error_code(exc), retry_after=_retry_after(exc)
            )
        return PushResult(Outcome.FAILED, error_code=_error_code(exc))
