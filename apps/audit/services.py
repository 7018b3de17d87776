"""Writes to the audit trail: ``audit_event_record`` (and its batch form) is the only way in."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from apps.audit.events import AuditAction
from apps.audit.hashing import event_hash
from apps.audit.locks import audit_chain_lock
from apps.audit.models import AuditChain, AuditEvent
from apps.audit.selectors import ChainBreak, audit_chain_list, audit_chain_verify
from apps.core.actor import Actor
from apps.core.sql import mark_saved
from apps.core.tenancy import lender_id_of


class AuditOutsideTransaction(RuntimeError):
    """An event must commit or roll back with the change it records."""


class AuditDataInvalid(TypeError):
    """Audit data holds a float: jsonb may give it back spelled differently than we hashed it."""


def _refuse_floats(value: Any) -> None:
    if isinstance(value, float):
        raise AuditDataInvalid("audit data must not hold floats; use Decimal or str")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)


def _normalise_data(data: dict[str, Any] | None) -> Any:
    # Round-trip through JSON so what we hash is exactly what jsonb gives back:
    # Decimals, dates and UUIDs become strings. Floats are refused, since jsonb
    # re-spells some of them (1e16 comes back as 10000000000000000).
    _refuse_floats(data)
    return json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder, allow_nan=False))


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


def audit_events_record(
    *, lender_id: int | None, entries: Sequence[AuditEntry]
) -> list[AuditEvent]:
    """Append several events of one change to ``lender_id``'s chain, in order.

    One lock of the chain head, one INSERT (of any number of events: one
    array per column), one head update: a service that records a payment, its
    allocation and a payoff holds the chain lock for a moment at the end of
    its transaction rather than from its first event; the sweep appends its
    range's events in one call.
    Same transaction rule as ``audit_event_record``.
    """
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(entries[0].action if entries else "")
    if not entries:
        return []
    chain = audit_chain_lock(lender_id=lender_id)
    seq, prev_hash, now = chain.last_seq, chain.last_hash, timezone.now()
    events = []
    for entry in entries:
        seq += 1
        target = entry.target
        event = AuditEvent(
            chain=chain,
            seq=seq,
            lender_id=lender_id,
            occurred_at=now,
            actor_type=entry.actor.type.value,
            actor_id=entry.actor.id or "",
            action=str(entry.action),
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None and target.pk is not None else "",
            data=_normalise_data(entry.data),
            reason=entry.reason,
            ip=_normalise_ip(entry.actor.ip),
            user_agent=entry.actor.user_agent,
            prev_hash=prev_hash,
        )
        event.hash = event_hash(
            lender_id=lender_id,
            seq=event.seq,
            occurred_at=event.occurred_at,
            actor_type=event.actor_type,
            actor_id=event.actor_id,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            data=event.data,
            reason=event.reason,
            ip=event.ip,
            user_agent=event.user_agent,
            prev_hash=event.prev_hash,
        )
        prev_hash = event.hash
        events.append(event)
    _events_insert_and_advance_head(chain=chain, events=events, seq=seq, head_hash=prev_hash)
    return events


# The head moves in the same statement that appends the events: one round trip
# instead of two, under the head's row lock taken just before. A data-modifying
# WITH runs exactly once whether or not the main query reads it.
@cache
def _unnest_insert_sql() -> tuple[str, list[Any]]:
    """``INSERT INTO audit_auditevent (...) SELECT FROM unnest(<one typed array per column>)``,
    which the head's update joins as a data-modifying WITH. One array per column costs
    PostgreSQL far less to parse than thousands of VALUES rows."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    columns = ", ".join(f.column for f in fields)
    head = "UPDATE audit_auditchain SET last_seq = %s, last_hash = %s WHERE id = %s"
    table = AuditEvent._meta.db_table
    insert = f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
    return f"WITH head AS ({head}) {insert} RETURNING id, seq", fields


def _column(field: Any, events: list[AuditEvent]) -> list[Any]:
    if field.get_internal_type() == "JSONField":
        return [json.dumps(getattr(e, field.attname), cls=field.encoder) for e in events]
    return [field.get_db_prep_save(field.pre_save(e, add=True), connection) for e in events]


def _events_insert_and_advance_head(
    *, chain: AuditChain, events: list[AuditEvent], seq: int, head_hash: str
) -> None:
    """``bulk_create(events)`` and the head's ``update(last_seq, last_hash)``, as one statement."""
    sql, fields = _unnest_insert_sql()
    params: list[Any] = [seq, head_hash, chain.pk, *(_column(f, events) for f in fields)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = {seq_: pk for pk, seq_ in cursor.fetchall()}
    for event in events:
        mark_saved(event, ids[event.seq])
    chain.last_seq, chain.last_hash = seq, head_hash


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
