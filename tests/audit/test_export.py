"""The generic reads and export over a list of targets (apps/audit/selectors.py, export.py)."""

import json

import pytest
from django.db import transaction

from apps.audit.evidence_verify import check
from apps.audit.export import audit_export_for_targets, audit_verifier_files
from apps.audit.selectors import AuditTargets, audit_event_list_for_targets
from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from tests.lenders.factories import LoanProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def products(lender_a, lender_b):
    """Three products of lender A and one of lender B, with two events each."""
    mine = [LoanProductFactory(lender=lender_a) for _ in range(3)]
    theirs = LoanProductFactory(lender=lender_b)
    with transaction.atomic():
        for round_ in (1, 2):
            for product in [*mine, theirs]:
                audit_event_record(
                    actor=Actor.system(), action=f"test.round{round_}", target=product
                )
    return mine, theirs


def test_events_for_targets_are_those_targets_on_the_lenders_chain_newest_first(
    lender_a, products
) -> None:
    mine, theirs = products
    targets = [
        AuditTargets("lenders.loanproduct", [str(mine[0].pk), str(theirs.pk)]),
        AuditTargets("lenders.loanproduct", [str(mine[2].pk)]),
        AuditTargets("lenders.lender", []),  # a kind with no ids adds nothing
    ]
    events = audit_event_list_for_targets(lender_id=lender_a.pk, targets=targets, limit=10)
    assert [(e.target_id, e.action) for e in events] == [
        (str(mine[2].pk), "test.round2"),
        (str(mine[0].pk), "test.round2"),
        (str(mine[2].pk), "test.round1"),
        (str(mine[0].pk), "test.round1"),
    ]
    assert len(audit_event_list_for_targets(lender_id=lender_a.pk, targets=targets, limit=3)) == 3
    assert audit_event_list_for_targets(lender_id=lender_a.pk, targets=[], limit=10) == []


def test_export_holds_the_targets_events_in_chain_order_and_verifies(lender_a, products) -> None:
    mine, _ = products
    export = audit_export_for_targets(
        lender_id=lender_a.pk, targets=[AuditTargets("lenders.loanproduct", [str(mine[1].pk)])]
    )
    assert [e["action"] for e in export.events] == ["test.round1", "test.round2"]
    seqs = [e["seq"] for e in export.events]
    assert seqs == sorted(seqs)
    assert export.chain["lender_id"] == lender_a.pk
    assert export.chain["head_seq"] >= seqs[-1]
    assert all(json.loads(e["data_text"]) == e["data"] for e in export.events)
    assert check({"chain": export.chain, "events": export.events}) is None
    assert set(audit_verifier_files()) == {"verify.py", "hashing.py"}
