"""The audit app's statements (apps/audit/sql.py): each against a Python oracle, and the
index each is written for, by EXPLAIN."""

from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from apps.audit import sql
from apps.audit.hashing import event_hash
from apps.audit.locks import audit_chain_lock
from apps.audit.models import GENESIS_HASH, AuditChain, AuditEvent
from apps.audit.selectors import EVENT_FIELDS
from apps.audit.services import AuditEntry, audit_events_record, audit_events_record_select
from apps.core.actor import Actor
from tests.explain import plan_of

pytestmark = pytest.mark.django_db

# the stored fields ``hashing.event_hash`` takes (its own prev_hash is given separately)
ORACLE_FIELDS = [f for f in EVENT_FIELDS if f not in ("data", "prev_hash", "hash", "format")]


def rows_of(statement: str, params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def oracle_chain(chain: AuditChain) -> list[tuple[int, str, str]]:
    """(seq, prev_hash, hash) of every event of ``chain`` as Python's ``hashing`` computes
    them, from the stored fields alone, starting at the genesis hash."""
    previous, expected = GENESIS_HASH, []
    events = (
        AuditEvent.objects.filter(chain=chain)
        .annotate(data_text=Cast("data", TextField()))
        .order_by("seq")
        .values(*ORACLE_FIELDS)
    )
    for event in events:
        digest = event_hash(lender_id=chain.lender_id, prev_hash=previous, **event)
        expected.append((event["seq"], previous, digest))
        previous = digest
    return expected


def stored_chain(chain: AuditChain) -> list[tuple[int, str, str]]:
    return list(
        AuditEvent.objects.filter(chain=chain)
        .order_by("seq")
        .values_list("seq", "prev_hash", "hash")
    )


def test_chain_lock_finds_the_lenders_head_and_the_platform_head(lender_a, lender_b) -> None:
    with transaction.atomic():
        mine = audit_chain_lock(lender_id=lender_a.pk)
        audit_chain_lock(lender_id=lender_b.pk)
        platform = audit_chain_lock(lender_id=None)
        assert [r[0] for r in rows_of(sql.CHAIN_LOCK, [lender_a.pk])] == [
            AuditChain.objects.get(lender_id=lender_a.pk).pk
        ]
        assert [r[0] for r in rows_of(sql.PLATFORM_CHAIN_LOCK, [])] == [
            AuditChain.objects.get(lender__isnull=True).pk
        ]
    assert (mine.lender_id, platform.lender_id) == (lender_a.pk, None)


def test_chain_lock_finds_the_head_by_an_index_on_its_lender(lender_a) -> None:
    # the lender's foreign-key index or audit_one_chain_per_lender: both lead with lender_id
    # (an index scan or a bitmap index scan, as the table's statistics make it)
    with plan_of(sql.CHAIN_LOCK, [lender_a.pk]) as plan:
        assert "Seq Scan" not in plan
        assert f"Index Cond: (lender_id = {lender_a.pk})" in plan
    with plan_of(sql.PLATFORM_CHAIN_LOCK, []) as plan:
        assert "Seq Scan" not in plan
        assert "Index Cond: (lender_id IS NULL)" in plan


def test_append_arrays_hashes_and_links_as_python_does(lender_a) -> None:
    actor = Actor(type=Actor.system().type, id="7", ip="::ffff:10.0.0.1", user_agent="ua|1:é")
    entries = [
        AuditEntry(actor=actor, action=f"test.arrays.{n}", data={"n": n, "s": "a|b:c"}, reason=r)
        for n, r in enumerate(["", "why", "ünïcode"])
    ]
    with transaction.atomic():
        audit_events_record(lender_id=lender_a.pk, entries=entries[:1])
        events = audit_events_record(lender_id=lender_a.pk, entries=entries[1:])
    chain = AuditChain.objects.get(lender_id=lender_a.pk)
    assert stored_chain(chain) == oracle_chain(chain)
    assert [e.seq for e in events] == [2, 3]
    assert (chain.last_seq, chain.last_hash) == (3, oracle_chain(chain)[-1][2])


def test_append_select_hashes_and_links_as_python_does(lender_a) -> None:
    rows = (
        "SELECT g AS n, (100 + g)::text AS target_id, jsonb_build_object('g', g) AS data "
        "FROM generate_series(1, %(count)s) AS g"
    )
    with transaction.atomic():
        audit_events_record(lender_id=lender_a.pk, entries=[AuditEntry(Actor.system(), "a.b")])
        appended = audit_events_record_select(
            lender_id=lender_a.pk,
            actor=Actor.system(),
            action="test.select",
            target_type="lenders.lender",
            reason="batch",
            rows=rows,
            params={"count": 4},
        )
    chain = AuditChain.objects.get(lender_id=lender_a.pk)
    assert appended == 4
    assert stored_chain(chain) == oracle_chain(chain)
    assert list(
        AuditEvent.objects.filter(action="test.select").order_by("seq").values_list("target_id")
    ) == [("101",), ("102",), ("103",), ("104",)]
    assert (chain.last_seq, chain.last_hash) == (5, oracle_chain(chain)[-1][2])


def test_append_moves_the_head_by_its_primary_key(lender_a) -> None:
    chain = AuditChain.objects.create(lender=lender_a)
    params: dict[str, Any] = {f"audit_{name}": [] for name in sql.SOURCE_COLUMNS}
    params |= {
        "audit_chain": chain.pk,
        "audit_last_seq": 0,
        "audit_start": GENESIS_HASH,
        "audit_now": chain.created_at,
        "audit_occurred": "",
        "audit_lender_id": lender_a.pk,
        "audit_lender": str(lender_a.pk),
    }
    with plan_of(sql.APPEND_ARRAYS, params) as plan:
        assert f"{AuditChain._meta.db_table}_pkey" in plan
