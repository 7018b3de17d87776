"""The stored answers of the APIs' idempotent POSTs (``apps.core.api.idempotency``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from apps.core.models import IdempotencyRecord
from apps.core.sql import (
    IDEMPOTENCY_RECORD_FIND,
    IDEMPOTENCY_RECORD_INSERT,
    insert_values,
    mark_saved,
    select_rows,
)


def idempotency_record_find(*, scope: str, key: str) -> IdempotencyRecord | None:
    # a statement written once: on every POST, the queryset cost more to compile than to run
    found = select_rows(IdempotencyRecord, IDEMPOTENCY_RECORD_FIND, [scope, key])
    return found[0] if found else None


def idempotency_record_store(  # audit: none, a cache of an answer already given and audited
    *, scope: str, key: str, fingerprint: str, status_code: int, body: Any
) -> IdempotencyRecord:
    """Keep the answer to (scope, key). The caller holds the key's advisory lock and found
    no answer, so the row is new."""
    record = IdempotencyRecord(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        status_code=status_code,
        body=json.loads(json.dumps(body, cls=DjangoJSONEncoder)),
    )
    # ``create()`` without compiling its INSERT (``IDEMPOTENCY_RECORD_INSERT``)
    with connection.cursor() as cursor:
        cursor.execute(IDEMPOTENCY_RECORD_INSERT, insert_values(record))
        (pk,) = cursor.fetchone()
    mark_saved(record, pk)
    return record


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
