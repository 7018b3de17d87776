"""Writes to the audit trail: ``audit_event_record`` (and its batch form) is the only way in."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from apps.audit.events import AuditAction
from apps.audit.hashing import FORMAT_VERSION, canonical_time
from apps.audit.locks import audit_chain_lock
from apps.audit.models import AuditChain, AuditEvent
from apps.audit.selectors import (
    ChainBreak,
    audit_chain_list,
    audit_chain_verify,
    audit_event_recorded_since,
)
from apps.audit.sql import APPEND_ARRAYS, append_select
from apps.core.actor import Actor
from apps.core.audit import audit_appended
from apps.core.sql import mark_saved
from apps.core.tenancy import lender_id_of


class AuditOutsideTransaction(RuntimeError):
    """An event must commit or roll back with the change it records."""


def _normalise_ip(ip: str | None) -> str:
    if not ip:
        return ""
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:1.2.3.4 is an IPv4 client
    return (mapped or address).compressed


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event to append, for ``audit_events_record``."""

    actor: Actor
    action: str
    target: models.Model | None = None
    data: dict[str, Any] | None = None
    reason: str = ""


def audit_event_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    lender_id: int | None = None,
    data: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    """Append one event to its lender's chain (the platform chain when it has none).

    Must run inside the caller's transaction, so the event commits or rolls back
    with the change it records. Takes the chain head's row lock (the last lock
    in the global order) and holds it until that transaction ends.
    The lender is ``lender_id`` if given, else the target's own lender.
    """
    if lender_id is None and target is not None:
        lender_id = lender_id_of(target)
    entry = AuditEntry(actor=actor, action=action, target=target, data=data, reason=reason)
    return audit_events_record(lender_id=lender_id, entries=[entry])[0]


class AuditEventRecorder:
    """The recorder behind ``apps.core.audit`` for the apps below this one: the same
    ``audit_event_record``, in the caller's transaction."""

    def record(
        self,
        *,
        actor: Actor,
        action: str,
        target: models.Model | None,
        lender_id: int | None,
        data: dict[str, Any] | None,
        reason: str,
    ) -> None:
        audit_event_record(
            actor=actor, action=action, target=target, lender_id=lender_id, data=data, reason=reason
        )

    def recorded_since(
        self,
        *,
        action: str,
        since: datetime,
        target_id: str | None,
        data: Mapping[str, str] | None,
    ) -> bool:
        return audit_event_recorded_since(
            action=action, since=since, target_id=target_id, data=data
        )


def audit_events_record(
    *, lender_id: int | None, entries: Sequence[AuditEntry]
) -> list[AuditEvent]:
    """Append several events of one change to ``lender_id``'s chain, in order.

    One lock of the chain head, then one statement that appends every event
    (one array per column), hashes the chain on in the database and moves
    the head: a service that records a payment, its allocation and a payoff
    holds the chain lock for a moment at the end of its transaction rather
    than from its first event. Same transaction rule as ``audit_event_record``.
    """
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(entries[0].action if entries else "")
    if not entries:
        return []
    targets = [e.target for e in entries]
    columns: dict[str, list[str]] = {
        "actor_type": [e.actor.type.value for e in entries],
        "actor_id": [e.actor.id or "" for e in entries],
        "action": [str(e.action) for e in entries],
        "target_type": [t._meta.label_lower if t is not None else "" for t in targets],
        "target_id": [str(t.pk) if t is not None and t.pk is not None else "" for t in targets],
        "data": [json.dumps(e.data or {}, cls=DjangoJSONEncoder) for e in entries],
        "reason": [e.reason for e in entries],
        "ip": [_normalise_ip(e.actor.ip) for e in entries],
        "user_agent": [e.actor.user_agent for e in entries],
    }
    params = {f"audit_{name}": values for name, values in columns.items()}
    rows, chain, now = _append(
        lender_id=lender_id, statement=APPEND_ARRAYS, params=params, returning=True
    )
    audit_appended(lender_id=lender_id, actions=columns["action"])
    events = []
    for i, (pk, seq, prev_hash, hash_, data) in enumerate(rows):
        entry = entries[i]
        event = AuditEvent(
            chain=chain,
            seq=seq,
            lender_id=lender_id,
            occurred_at=now,
            actor_type=columns["actor_type"][i],
            actor_id=columns["actor_id"][i],
            action=columns["action"][i],
            target_type=columns["target_type"][i],
            target_id=columns["target_id"][i],
            data=json.loads(data),
            reason=entry.reason,
            ip=columns["ip"][i],
            user_agent=entry.actor.user_agent,
            prev_hash=prev_hash,
            hash=hash_,
            format=FORMAT_VERSION,
        )
        mark_saved(event, pk)
        events.append(event)
    return events


def audit_events_record_select(
    *,
    lender_id: int | None,
    actor: Actor,
    action: str,
    target_type: str,
    reason: str,
    rows: str,
    params: dict[str, Any],
) -> int:
    """Append one event per row of the SQL query ``rows`` to ``lender_id``'s chain.

    For a change of thousands of objects (the restriction sweep, a batch of
    desired states): ``rows`` is a SELECT of ``(n, target_id text, data jsonb)``
    over ``params`` (named), the events are appended in the order of ``n``,
    all by ``actor``, with ``action``, ``target_type`` and ``reason``; the
    data is built in SQL and the events are hashed in the database, so
    nothing per event passes through Python. Returns how many were appended.
    Same transaction rule as ``audit_event_record``.
    """
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(action)
    params = {
        **params,
        "audit_actor_type": actor.type.value,
        "audit_actor_id": actor.id or "",
        "audit_action": str(action),
        "audit_target_type": target_type,
        "audit_reason": reason,
        "audit_ip": _normalise_ip(actor.ip),
        "audit_user_agent": actor.user_agent,
    }
    found, _, _ = _append(
        lender_id=lender_id, statement=append_select(rows), params=params, returning=False
    )
    if found[0][0]:
        audit_appended(lender_id=lender_id, actions=[str(action)])
    return int(found[0][0])


def _append(
    *, lender_id: int | None, statement: str, params: dict[str, Any], returning: bool
) -> tuple[list[tuple[Any, ...]], AuditChain, datetime]:
    """Run an append statement of ``apps.audit.sql`` on ``lender_id``'s chain, under its
    head's lock. With ``returning`` the statement gives back the events, and ``chain`` comes
    back moved on to the last of them."""
    chain = audit_chain_lock(lender_id=lender_id)
    now = timezone.now()
    params = {
        **params,
        "audit_chain": chain.pk,
        "audit_last_seq": chain.last_seq,
        "audit_start": chain.last_hash,
        "audit_now": now,
        "audit_occurred": canonical_time(now),
        "audit_lender_id": lender_id,
        "audit_lender": "" if lender_id is None else str(lender_id),
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    if returning and rows:
        chain.last_seq, chain.last_hash = rows[-1][1], rows[-1][3]
    return rows, chain, now


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    business_date: date
    breaks: list[ChainBreak]
    recorded: bool


def _checkpoint_exists(business_date: date) -> bool:
    return AuditEvent.objects.filter(
        lender__isnull=True,
        action=AuditAction.CHAIN_CHECKPOINTED,
        data__date=business_date.isoformat(),
    ).exists()


def audit_chain_checkpoint_record(*, as_of: datetime | None = None) -> CheckpointResult:
    """Verify every chain and anchor each head (seq, hash) in the platform chain.

    Each chain is verified in its own consistent snapshot, with no lock held,
    so audited writes go on meanwhile; only the final append locks the platform
    chain. Idempotent per UTC date: a second run that day (checked again under
    that lock) records nothing. A broken chain is recorded too, naming its
    first broken link, so the failure itself is evidence. Emits
    ``audit.chain.checkpointed``.
    """
    business_date = (as_of or timezone.now()).date()
    if _checkpoint_exists(business_date):
        return CheckpointResult(business_date=business_date, breaks=[], recorded=False)
    heads, breaks = [], []
    for chain in audit_chain_list():
        found = audit_chain_verify(chain=chain)
        if found is not None:
            breaks.append(found)
        heads.append({"lender": chain.lender_id, "seq": chain.last_seq, "hash": chain.last_hash})
    with transaction.atomic():
        audit_chain_lock(lender_id=None)  # serialise concurrent checkpoints
        if _checkpoint_exists(business_date):
            return CheckpointResult(business_date=business_date, breaks=[], recorded=False)
        _record_checkpoint(business_date, heads, breaks)
    return CheckpointResult(business_date=business_date, breaks=breaks, recorded=True)


def _record_checkpoint(
    business_date: date, heads: list[dict[str, Any]], breaks: list[ChainBreak]
) -> None:
    audit_event_record(
        actor=Actor.system(),
        action=AuditAction.CHAIN_CHECKPOINTED,
        data={
            "date": business_date.isoformat(),
            "heads": heads,
            "breaks": [b.as_dict() for b in breaks],
        },
    )
