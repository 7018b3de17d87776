"""The canonical encoding of an audit event and its SHA-256.

Kept free of Django so an outside party can check a chain with this file alone.

Format 2 (every event appended now) is computed by the database as it
appends (``apps.audit.services._append_sql``), so that the restriction sweep
can chain a hundred thousand events without one of them passing through
Python; this file is its reference, and ``verify_audit`` checks each stored
hash with it. The encoding is a line of length-prefixed fields, each
``<length>:<text>``, joined by ``|``, starting with the format number::

    2|<lender>|<seq>|<occurred_at>|<actor_type>|<actor_id>|<action>|<target_type>|
      <target_id>|<data>|<reason>|<ip>|<user_agent>|<prev_hash>

where ``lender`` is empty on the platform chain, ``occurred_at`` is written
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` and ``data`` is the JSON text of the stored
``jsonb`` value as PostgreSQL writes it (``data::text``); the hash is the hex
SHA-256 of the line in UTF-8. Lengths count characters.

Format 1 (events appended before format 2) is kept so old chains still
verify: SHA-256 of the JSON object of the fields with sorted keys, no spaces.
Changing either breaks every stored chain: add a format instead.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

FORMAT_VERSION = 2


def canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def field(value: str) -> str:
    return f"{len(value)}:{value}"


def event_line(
    *,
    lender_id: int | None,
    seq: int,
    occurred_at: datetime,
    actor_type: str,
    actor_id: str,
    action: str,
    target_type: str,
    target_id: str,
    data_text: str,
    reason: str,
    ip: str,
    user_agent: str,
) -> str:
    """Format 2's line of one event, without its ``prev_hash`` field."""
    fields = [
        "" if lender_id is None else str(lender_id),
        str(seq),
        canonical_time(occurred_at),
        actor_type,
        actor_id,
        action,
        target_type,
        target_id,
        data_text,
        reason,
        ip,
        user_agent,
    ]
    return "|".join([str(FORMAT_VERSION), *map(field, fields)])


def event_hash(*, prev_hash: str, **fields: Any) -> str:
    """Format 2: the hash of an event, given its fields as ``event_line`` takes them."""
    line = f"{event_line(**fields)}|{field(prev_hash)}"
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def event_hash_v1(
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
    """Format 1, for events appended before format 2."""
    fields = {
        "v": 1,
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
    encoded = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
