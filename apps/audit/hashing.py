"""The canonical encoding of an audit event and its SHA-256.

Kept free of Django so an outside party can check a chain with this file alone.
Changing anything here breaks every stored chain: bump ``FORMAT_VERSION`` and
keep the old encoder instead.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

FORMAT_VERSION = 1


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def event_hash(
    *,
    lender_id: int | None,
    seq: int,
    occurred_at: datetime,
    actor_type: str,
    actor_id: str,
    action: str,
    target_type: str,
    target_id: str,
    data: Any,
    reason: str,
    ip: str,
    user_agent: str,
    prev_hash: str,
) -> str:
    fields = {
        "v": FORMAT_VERSION,
        "lender": lender_id,
        "seq": seq,
        "occurred_at": canonical_time(occurred_at),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "data": data,
        "reason": reason,
        "ip": ip,
        "user_agent": user_agent,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_bytes(fields)).hexdigest()
