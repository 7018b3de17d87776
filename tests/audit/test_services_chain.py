from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.audit.hashing import event_hash
from apps.audit.models import GENESIS_HASH, AuditChain, AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import AuditOutsideTransaction, audit_event_record
from apps.core.actor import Actor, ActorType
from tests.audit.factories import audit_event_for, tamper

pytestmark = pytest.mark.django_db


def test_events_link_into_one_chain_per_lender(lender_a, lender_b) -> None:
    a1, b1, a2 = audit_event_for(lender_a), audit_event_for(lender_b), audit_event_for(lender_a)
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1)
    assert a1.prev_hash == GENESIS_HASH
    assert a2.prev_hash == a1.hash
    assert a1.chain_id == a2.chain_id != b1.chain_id
    chain = AuditChain.objects.get(lender=lender_a)
    assert (chain.last_seq, chain.last_hash) == (2, a2.hash)


def test_event_without_lender_goes_on_the_platform_chain() -> None:
    first, second = audit_event_for(None), audit_event_for(None)
    assert first.chain_id == second.chain_id
    assert AuditChain.objects.get(pk=first.chain_id).lender_id is None
    assert AuditChain.objects.filter(lender__isnull=True).count() == 1


def test_lender_comes_from_the_target(lender_a) -> None:
    with transaction.atomic():
        event = audit_event_record(
            actor=Actor.system(), action="tests.lender.touched", target=lender_a
        )
    assert (event.lender_id, event.target_type, event.target_id) == (
        lender_a.pk,
        "lenders.lender",
        str(lender_a.pk),
    )


def test_stored_hash_covers_every_field_as_stored(lender_a) -> None:
    actor = Actor(type=ActorType.AGENT, id="42", ip="::ffff:10.0.0.1", user_agent="pytest")
    with transaction.atomic():
        event = audit_event_record(
            actor=actor,
            action="tests.thing.changed",
            target=lender_a,
            data={"old": {"amount": Decimal("10.50")}, "new": {"amount": Decimal("12.00")}},
            reason="customer called",
        )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.ip == "10.0.0.1"
    assert stored.data == {"old": {"amount": "10.50"}, "new": {"amount": "12.00"}}
    assert (event.hash, stored.format) == (stored.hash, 2)
    assert stored.hash == event_hash(
        lender_id=lender_a.pk,
        seq=stored.seq,
        occurred_at=stored.occurred_at,
        actor_type="agent",
        actor_id="42",
        action="tests.thing.changed",
        target_type="lenders.lender",
        target_id=str(lender_a.pk),
        data_text='{"new": {"amount": "12.00"}, "old": {"amount": "10.50"}}',
        reason="customer called",
        ip=stored.ip,
        user_agent="pytest",
        prev_hash=stored.prev_hash,
    )
    assert audit_chain_verify(chain=stored.chain) is None


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused(lender_a) -> None:
    with pytest.raises(AuditOutsideTransaction):
        audit_event_record(actor=Actor.system(), action="tests.thing.happened", target=lender_a)
    assert not AuditEvent.objects.exists()


def test_a_float_is_hashed_as_jsonb_stores_it(lender_a) -> None:
    """jsonb re-spells some numbers (1e16 comes back 10000000000000000): the hash
    covers what is stored, so the chain still verifies."""
    event = audit_event_for(lender_a, nested=[{"x": 1e16}])
    assert AuditEvent.objects.get(pk=event.pk).data == {"nested": [{"x": 10000000000000000}]}
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None


@pytest.mark.django_db
def test_the_head_moves_in_the_statement_that_appends_the_events_when_batched() -> None:
    from apps.audit.services import AuditEntry, audit_events_record

    entries = [
        AuditEntry(actor=Actor.system(), action="test.batch", data={"n": n}) for n in range(3)
    ]
    with transaction.atomic():
        events = audit_events_record(lender_id=None, entries=entries)
    chain = AuditChain.objects.get(lender__isnull=True)
    stored = list(AuditEvent.objects.filter(action="test.batch").order_by("seq"))
    assert [e.pk for e in events] == [e.pk for e in stored]
    assert [e.data["n"] for e in stored] == [0, 1, 2]
    assert (chain.last_seq, chain.last_hash) == (stored[-1].seq, stored[-1].hash)
    assert audit_chain_verify(chain=chain) is None


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("occurred_at", "'2001-01-01T00:00:00Z'::timestamptz"),
        ("actor_type", "'device'"),
        ("actor_id", "'99'"),
        ("action", "'x.y.z'"),
        ("target_type", "'lenders.membership'"),
        ("target_id", "'12345'"),
        ("data", "'{\"a\": 1}'::jsonb"),
        ("reason", "'edited'"),
        ("ip", "'10.1.1.1'"),
        ("user_agent", "'other'"),
        ("format", "1"),
    ],
)
def test_editing_any_hashed_field_breaks_the_chain(lender_a, column, value) -> None:
    event = audit_event_for(lender_a)
    tamper(f"UPDATE audit_auditevent SET {column} = {value} WHERE id = %s", [event.pk])  # noqa: S608
    found = audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a))
    assert found is not None
    assert (found.event_id, found.problem) == (
        event.pk,
        "stored hash does not match the event's contents",
    )


def test_the_hash_of_known_fields_is_fixed() -> None:
    """A known answer: the format 2 line (length-prefixed fields, lengths in characters) cannot drift."""
    import hashlib
    from datetime import UTC, datetime

    digest = event_hash(
        lender_id=7,
        seq=3,
        occurred_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        actor_type="agent",
        actor_id="42",
        action="collections.payment.received",
        target_type="collections.loan",
        target_id="9",
        data_text='{"amount": "10.50"}',
        reason="pagó en efectivo",
        ip="10.0.0.1",
        user_agent="ua",
        prev_hash="0" * 64,
    )
    # written out by hand from docs/audit.md's description, not by apps/audit/hashing.py
    line = (
        "2|1:7|1:3|27:2026-11-24T12:00:00.000000Z|5:agent|2:42|28:collections.payment.received"
        '|16:collections.loan|1:9|19:{"amount": "10.50"}|16:pagó en efectivo|8:10.0.0.1|2:ua|64:'
        + "0"
        * 64
    )
    assert digest == hashlib.sha256(line.encode()).hexdigest()


def test_events_of_format_1_still_verify(lender_a) -> None:
    """Chains begun before format 2 keep their old hashes: each row says its format."""
    from apps.audit.hashing import event_hash_v1

    first = audit_event_for(lender_a)
    old = event_hash_v1(
        lender_id=lender_a.pk,
        seq=1,
        occurred_at=first.occurred_at,
        actor_type="system",
        actor_id="",
        action=first.action,
        target_type="",
        target_id="",
        data={},
        reason="",
        ip="",
        user_agent="",
        prev_hash=first.prev_hash,
    )
    tamper("UPDATE audit_auditevent SET format = 1, hash = %s WHERE id = %s", [old, first.pk])
    tamper("UPDATE audit_auditchain SET last_hash = %s WHERE lender_id = %s", [old, lender_a.pk])
    second = audit_event_for(lender_a)
    assert (second.prev_hash, second.format) == (old, 2)
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None


_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(_text, _json, max_size=5), reason=_text, user_agent=_text)
def test_the_database_and_the_reference_encoder_agree_on_any_event(
    lender_a, data, reason, user_agent
) -> None:
    """The hash the database computes while appending is the one apps/audit/hashing.py computes
    from the stored row: any text (non-ASCII, separators, digits that look like lengths), any JSON."""
    actor = Actor(type=ActorType.AGENT, id="7|3:x", user_agent=user_agent)
    with transaction.atomic():
        event = audit_event_record(
            actor=actor, action="tests.any.thing", target=lender_a, data=data, reason=reason
        )
    assert event.data == AuditEvent.objects.get(pk=event.pk).data
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None
