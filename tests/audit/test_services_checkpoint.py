from datetime import UTC, datetime

import pytest

from apps.audit.models import AuditEvent
from apps.audit.services import audit_chain_checkpoint_record
from tests.audit.factories import audit_event_for, tamper

pytestmark = pytest.mark.django_db


def test_checkpoint_anchors_every_head_once_a_day(lender_a, lender_b) -> None:
    a = audit_event_for(lender_a)
    audit_event_for(lender_b)
    day = datetime(2026, 11, 24, 2, 15, tzinfo=UTC)
    first = audit_chain_checkpoint_record(as_of=day)
    second = audit_chain_checkpoint_record(as_of=day)
    assert (first.recorded, second.recorded) == (True, False)
    event = AuditEvent.objects.get(action="audit.chain.checkpointed")
    assert event.lender_id is None
    assert {"lender": lender_a.pk, "seq": 1, "hash": a.hash} in event.data["heads"]
    assert event.data["breaks"] == []
    assert audit_chain_checkpoint_record(as_of=day.replace(day=25)).recorded


def test_checkpoint_records_a_broken_chain(lender_a) -> None:
    events = [audit_event_for(lender_a) for _ in range(3)]
    tamper("UPDATE audit_auditevent SET reason = 'x' WHERE id = %s", [events[1].pk])
    result = audit_chain_checkpoint_record()
    assert [(b.lender_id, b.seq, b.event_id) for b in result.breaks] == [
        (lender_a.pk, 2, events[1].pk)
    ]
    stored = AuditEvent.objects.get(action="audit.chain.checkpointed")
    assert stored.data["breaks"][0]["seq"] == 2
