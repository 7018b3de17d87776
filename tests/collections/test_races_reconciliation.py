"""The same day's report built by several runs at once (beat firing twice, the lender's admin
pressing the button meanwhile): one report, every run answered, none refused."""

import pytest

from apps.audit.models import AuditChain
from apps.audit.selectors import audit_chain_verify
from apps.collections.models import ReconciliationReport
from apps.collections.services import reconciliation_report_build
from apps.core.actor import Actor
from tests.collections.daraja import paybill_for
from tests.collections.reconciliation import the_day
from tests.waiting import run_at_once


@pytest.mark.django_db(transaction=True)
def test_a_day_built_by_four_runs_at_once_is_one_report(lender_a) -> None:
    paybill_for(lender_a)
    day = the_day(lender_a)

    def build() -> ReconciliationReport:
        return reconciliation_report_build(
            lender_id=lender_a.pk, provider="mpesa", day=day, actor=Actor.system()
        )

    results = run_at_once(build, build, build, build)
    assert all(isinstance(r, ReconciliationReport) for r in results), results
    assert {r.pk for r in results} == {ReconciliationReport.objects.get().pk}
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None
