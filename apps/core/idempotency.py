"""The stored answers of the APIs' idempotent POSTs (``apps.core.api.idempotency``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from apps.core.models import IdempotencyRecord


def idempotency_record_find(*, scope: str, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(scope=scope, key=key).first()


def idempotency_record_store(  # audit: none, a cache of an answer already given and audited
    *, scope: str, key: str, fingerprint: str, status_code: int, body: Any
) -> IdempotencyRecord:
    """Keep the answer to (scope, key). The caller holds the key's advisory lock and found
    no answer, so the row is new."""
    return IdempotencyRecord.objects.create(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        status_code=status_code,
        body=json.loads(json.dumps(body, cls=DjangoJSONEncoder)),
    )


# How long an answer is kept for a repeat: a caller retries within minutes, at most a day.
# The answers may hold a secret of their own call (an enrollment code, good for a day).
IDEMPOTENCY_KEEP = timedelta(hours=24)


def idempotency_records_purge(
    *, now: datetime | None = None
) -> int:  # audit: none, expired copies of answers already given
    """Delete the answers older than ``IDEMPOTENCY_KEEP`` (beat, hourly); a repeat after that
    is a new request (the services' own idempotency still returns the first row). Returns
    how many went. Index: ``idempotency_created``."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_KEEP
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
