"""``Idempotency-Key`` on POST: the stored answer for a repeat, 409 for the key with another
request.

A view takes ``IdempotentPostMixin`` and says whose keys they are (``idempotency_scope``).
A POST then:

1. names a key in the ``Idempotency-Key`` header (1 to 255 printable ASCII characters;
   missing: 400 ``idempotency_key_missing`` where ``idempotency_required``);
2. takes the key's advisory lock (PostgreSQL, ``apps.core.sql.IDEMPOTENCY_LOCK``): a
   concurrent repeat waits here until the first has answered;
3. finds the answer stored for the key: the same request (method, path and body) gets it
   again, with ``Idempotent-Replayed: true``; another request gets 409
   ``idempotency_conflict``;
4. otherwise runs the view, stores its answer unless it was a 5xx (a failure on our side
   may be tried again), and releases the lock.

The view's services run in their own transactions (no request-wide transaction), so a
service that must be the outermost one still is. A request cut short between the service's
commit and the stored answer leaves no answer: its repeat runs the view again, and the
service's own idempotency (the loan's or the payment's key) returns the first row.
tests/core/test_api_idempotency.py, tests/collections/test_api_lender_idempotency.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import DomainError, IdempotencyConflict
from apps.core.idempotency import idempotency_record_find, idempotency_record_store
from apps.core.sql import IDEMPOTENCY_LOCK, IDEMPOTENCY_UNLOCK

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_LOCK_NAMESPACE = 7401  # pg_advisory_lock(namespace, key) for idempotency keys

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="A key of your choice, unique per operation (a UUID). A repeat with the "
    "same key and body gets the first answer again (header `Idempotent-Replayed: true`); "
    "the same key with another body gets 409 `idempotency_conflict`.",
)


class IdempotencyKeyMissing(DomainError):
    code, http_status = "idempotency_key_missing", 400
    default_message = _(
        "Send an Idempotency-Key header (1 to 255 printable ASCII characters) with every POST."
    )


def _lock_key(scope: str, key: str) -> int:
    digest = hashlib.sha256(f"{scope}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _fingerprint(request: Request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder)
    except TypeError:  # not JSON data: the bytes as sent
        body = request.body.hex()
    text = f"{request.method}\x00{request.path}\x00{body}"
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotentPostMixin:
    """Answers a repeated POST from the stored answer (see the module's docstring)."""

    idempotency_required = True
    _idempotency_lock: int | None = None  # the advisory lock this request holds
    _idempotency_store: tuple[str, str, str] | None = None  # scope, key, fingerprint

    def idempotency_scope(self, request: Request) -> str:
        """Whose keys these are; called after authentication."""
        raise NotImplementedError

    def idempotency_stored(self, data: Any) -> Any:
        """The part of an answer kept for a repeat: all of it, unless the view holds back a
        secret it shows once (a webhook endpoint's signing secret is kept only sealed)."""
        return data

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # a mixin of APIView
        if request.method != "POST":
            return
        key = request.headers.get(HEADER)
        if key is None:
            if self.idempotency_required:
                raise IdempotencyKeyMissing()
            return
        if not _KEY.fullmatch(key):
            raise IdempotencyKeyMissing()
        scope = self.idempotency_scope(request)
        fingerprint = _fingerprint(request)  # parses the body first: a 400 takes no lock
        lock = _lock_key(scope, key)
        with connection.cursor() as cursor:
            cursor.execute(IDEMPOTENCY_LOCK, [_LOCK_NAMESPACE, lock])
        self._idempotency_lock = lock
        stored = idempotency_record_find(scope=scope, key=key)
        if stored is None:
            self._idempotency_store = (scope, key, fingerprint)
            return
        if stored.fingerprint != fingerprint:
            raise IdempotencyConflict(key=key)
        replay = Response(stored.body, status=stored.status_code)
        replay[REPLAYED_HEADER] = "true"
        setattr(self, "post", lambda *a, **k: replay)  # noqa: B010  # the handler dispatch calls

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        pending, self._idempotency_store = self._idempotency_store, None
        if pending is not None and isinstance(response, Response) and response.status_code < 500:
            scope, key, fingerprint = pending
            idempotency_record_store(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                status_code=response.status_code,
                body=self.idempotency_stored(response.data),
            )
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]  # a mixin of APIView

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]  # a mixin of APIView
        finally:
            lock, self._idempotency_lock = self._idempotency_lock, None
            self._idempotency_store = None
            if lock is not None:
                with connection.cursor() as cursor:
                    cursor.execute(IDEMPOTENCY_UNLOCK, [_LOCK_NAMESPACE, lock])
