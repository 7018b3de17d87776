"""Reads of the audit trail, including the chain verifier."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from apps.audit.hashing import event_hash, event_hash_v1
from apps.audit.models import GENESIS_HASH, AuditChain, AuditEvent
from apps.audit.public import SCAN_WINDOW, PublicEvent, PublicEventPage, public_events_params
from apps.audit.sql import CHAIN_HEAD, PUBLIC_EVENTS

# An event's stored fields, with its data as the text format 2 hashes (``data_text``).
EVENT_FIELDS = (
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "data",
    "data_text",
    "reason",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
    "format",
)
_VERIFY_FIELDS = ("id", "lender_id", *EVENT_FIELDS)


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first link of a chain that does not hold, and why."""

    lender_id: int | None
    seq: int
    event_id: int | None
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_chain_list(*, lender_id: int | None = None) -> QuerySet[AuditChain]:
    chains = AuditChain.objects.select_related("lender").order_by("lender_id")
    return chains.filter(lender_id=lender_id) if lender_id is not None else chains


def audit_chain_verify(*, chain: AuditChain, chunk_size: int = 5000) -> ChainBreak | None:
    """Walk ``chain`` in order and return its first broken link, or None if it holds.

    Checks, for each event: it is on its chain's lender, the sequence has no
    gap (a deleted row), ``prev_hash`` is the previous event's hash (a row
    inserted or reordered), and the stored hash is the hash of the stored fields
    (a row edited). Finally the head must point at the last event, with no event
    past it (rows cut off the end, or forged after it). Reads one REPEATABLE
    READ snapshot when called outside a transaction, so concurrent appends are
    neither missed nor mistaken for forgeries. Streams rows in chunks: memory
    stays flat however long the chain.
    """
    if connection.in_atomic_block:
        return _verify(chain=chain, chunk_size=chunk_size)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _verify(chain=chain, chunk_size=chunk_size)


def _verify(*, chain: AuditChain, chunk_size: int) -> ChainBreak | None:
    chain = AuditChain.objects.get(pk=chain.pk)
    expected_prev, expected_seq = GENESIS_HASH, 1
    rows = (
        AuditEvent.objects.filter(chain=chain, seq__lte=chain.last_seq)
        .annotate(data_text=Cast("data", TextField()))  # format 2 hashes jsonb's own text
        .order_by("seq")
        .values_list(*_VERIFY_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    for row in rows:
        event = dict(zip(_VERIFY_FIELDS, row, strict=True))

        def broken(problem: str, event: dict[str, Any] = event) -> ChainBreak:
            return ChainBreak(chain.lender_id, event["seq"], event["id"], problem)

        if event["lender_id"] != chain.lender_id:
            return broken("the event names another lender than its chain")
        if event["seq"] != expected_seq:
            return broken(f"sequence jumps from {expected_seq - 1} to {event['seq']}")
        if event["prev_hash"] != expected_prev:
            return broken("prev_hash does not match the previous event's hash")
        recomputed = _recompute(event, lender_id=chain.lender_id)
        if recomputed != event["hash"]:
            return broken("stored hash does not match the event's contents")
        expected_prev, expected_seq = event["hash"], expected_seq + 1

    last_seq = expected_seq - 1
    past_head = (
        AuditEvent.objects.filter(chain=chain, seq__gt=chain.last_seq).order_by("seq").first()
    )
    if past_head is not None:
        return ChainBreak(
            chain.lender_id, past_head.seq, past_head.pk, "an event lies past the chain head"
        )
    if (chain.last_seq, chain.last_hash) != (last_seq, expected_prev):
        return ChainBreak(
            chain.lender_id,
            last_seq + 1,
            None,
            f"chain head says seq {chain.last_seq} but the events end at {last_seq}",
        )
    return None


def _recompute(event: dict[str, Any], *, lender_id: int | None) -> str | None:
    fields = {
        name: event[name]
        for name in (
            "seq",
            "occurred_at",
            "actor_type",
            "actor_id",
            "action",
            "target_type",
            "target_id",
            "reason",
            "ip",
            "user_agent",
            "prev_hash",
        )
    }
    if event["format"] == 2:
        return event_hash(lender_id=lender_id, data_text=event["data_text"], **fields)
    if event["format"] == 1:
        return event_hash_v1(lender_id=lender_id, data=event["data"], **fields)
    return None  # an unknown format is a broken link


def audit_event_recorded_since(
    *,
    action: str,
    since: datetime,
    target_id: str | None = None,
    data: Mapping[str, str] | None = None,
) -> bool:
    """Whether an event ``action`` was recorded at or after ``since``, about ``target_id`` if
    given, whose data holds each of ``data``'s keys with that value if given."""
    events = AuditEvent.objects.filter(action=action, occurred_at__gte=since)
    if target_id is not None:
        events = events.filter(target_id=target_id)
    if data:
        events = events.filter(**{f"data__{key}": value for key, value in data.items()})
    return events.exists()


@dataclass(frozen=True, slots=True)
class AuditTargets:
    """Objects of one kind: their type (``collections.loan``, a model's ``label_lower``) and
    their ids, as events name them."""

    type: str
    ids: Sequence[str]


def audit_targets_filter(targets: Sequence[AuditTargets]) -> Q:
    """A filter on ``AuditEvent``: events about any of ``targets``."""
    query = Q(pk__in=[])
    for target in targets:
        query |= Q(target_type=target.type, target_id__in=list(target.ids))
    return query


def audit_event_list_for_targets(
    *, lender_id: int, targets: Sequence[AuditTargets], limit: int
) -> list[AuditEvent]:
    """The latest ``limit`` events about any of ``targets`` on the lender's chain, newest
    first."""
    events = AuditEvent.objects.filter(lender_id=lender_id).filter(audit_targets_filter(targets))
    return list(events.order_by("-occurred_at", "-id")[:limit])


def audit_event_rows_for_targets(
    *, lender_id: int, targets: Sequence[AuditTargets]
) -> tuple[AuditChain, QuerySet[AuditEvent, dict[str, Any]]]:
    """The lender's chain, and ``EVENT_FIELDS`` of its events about any of ``targets`` in
    chain order (``data_text``: the data as jsonb's own text, which format 2 hashes)."""
    chain = AuditChain.objects.get(lender_id=lender_id)
    rows = (
        AuditEvent.objects.filter(chain=chain)
        .filter(audit_targets_filter(targets))
        .annotate(data_text=Cast("data", TextField()))
        .order_by("seq")
        .values(*EVENT_FIELDS)
    )
    return chain, rows


def public_event_list(
    *, lender_id: int, after: int = 0, limit: int = 100, types: Sequence[str] | None = None
) -> PublicEventPage:
    """The lender's public events after the cursor ``after`` (a seq of its chain; 0 from the
    start), at most ``limit``, of ``types`` if given, in order.

    One statement over at most ``SCAN_WINDOW`` events of the chain, so a page costs the same
    however sparse the public events are; an empty page with a moved cursor means "ask
    again from there". Only this lender's chain is read: another lender's events cannot
    appear (``tests/audit/test_public.py``)."""
    with connection.cursor() as cursor:
        cursor.execute(CHAIN_HEAD, [lender_id])
        head = cursor.fetchone()
        if head is None:
            return PublicEventPage(events=[], cursor=after)
        chain_id, last_seq = head
        upto = min(after + SCAN_WINDOW, last_seq)
        cursor.execute(
            PUBLIC_EVENTS,
            public_events_params(
                chain_id=chain_id, after=after, upto=upto, limit=limit, types=types
            ),
        )
        rows = cursor.fetchall()
    events = []
    for _, seq, occurred_at, type_, loan_id, raw in rows:
        payload = raw if isinstance(raw, dict) else json.loads(raw)  # Django reads jsonb as text
        events.append(
            PublicEvent(
                id=payload["id"],
                seq=seq,
                type=type_,
                occurred_at=occurred_at,
                loan_id=loan_id,
                payload=payload,
            )
        )
    full = len(events) == limit
    return PublicEventPage(events=events, cursor=events[-1].seq if full else max(upto, after))
