"""The stored answers of the APIs' idempotent POSTs (``apps.core.api.idempotency``)."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

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
