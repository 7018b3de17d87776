"""The back office's reconciliation reports: the agent's own lender's only, read-only, filtered
by provider and by differences, each difference shown with its loan; the lender's admin builds
yesterday's reports from the list."""

from datetime import timedelta

import pytest
from django.urls import reverse

from apps.collections.models import ReconciliationReport
from apps.collections.services import reconciliation_report_build
from apps.core.actor import Actor
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from tests.collections.daraja import paybill_for
from tests.collections.reconciliation import a_day_of_payments
from tests.collections.stripe import SECRET_KEY

pytestmark = pytest.mark.django_db

LIST = "admin:collections_reconciliationreport_changelist"
BUILD = "admin:collections_reconciliationreport_build"


def build(lender, provider, day) -> ReconciliationReport:
    return reconciliation_report_build(
        lender_id=lender.pk, provider=provider, day=day, actor=Actor.system()
    )


@pytest.fixture
def reports(client, lender_a, lender_b, stripe_fake, daraja):
    """Lender A's day (three differences at Stripe, one unmatched paybill payment), an empty
    day before it, and lender B's report of the same day."""
    day = a_day_of_payments(client, lender_a, stripe_fake, daraja, SECRET_KEY)
    paybill_for(lender_b)
    return {
        "day": day,
        "stripe": build(lender_a, "stripe", day.day),
        "mpesa": build(lender_a, "mpesa", day.day),
        "quiet": build(lender_a, "mpesa", day.day - timedelta(days=1)),
        "other": build(lender_b, "mpesa", day.day),
    }


def listed(client, **params) -> set[int]:
    response = client.get(reverse(LIST), params)
    assert response.status_code == 200
    return {report.pk for report in response.context["cl"].result_list}


def test_the_list_shows_only_the_agents_lenders_reports_and_filters_them(
    lender_a, lender_b, make_agent, verified_client, reports
) -> None:
    agent = verified_client(make_agent(lender_a))
    own = {reports[k].pk for k in ("stripe", "mpesa", "quiet")}
    assert listed(agent) == own
    assert listed(agent, provider="stripe") == {reports["stripe"].pk}
    assert listed(agent, differs="yes") == {reports["stripe"].pk, reports["mpesa"].pk}
    assert listed(agent, differs="no") == {reports["quiet"].pk}
    assert listed(verified_client(make_agent(lender_b))) == {reports["other"].pk}
    page = agent.get(reverse(LIST)).content.decode()
    assert ">3<" in page  # the Stripe report's differences, counted in the list


def test_a_report_shows_its_differences_with_their_loans(
    lender_a, make_agent, verified_client, reports
) -> None:
    agent = verified_client(make_agent(lender_a))
    day = reports["day"]
    page = agent.get(
        reverse("admin:collections_reconciliationreport_change", args=[reports["stripe"].pk])
    ).content.decode()
    assert 'id="differences"' in page
    for reference, loan, kind in (
        (day.stripe_only, day.loans[1], "Settled at the provider, no payment here"),
        (day.ours_only, day.loans[3], "Applied here, not listed by the provider"),
        (day.differs, day.loans[2], "Amounts differ"),
    ):
        assert reference in page
        assert kind in page
        link = reverse("admin:collections_loan_change", args=[loan.pk])
        assert f'<a href="{link}">{loan.reference}</a>' in page
    assert day.matched not in page
    assert "at the provider" in page  # the amount Stripe has beside ours
    unmatched = agent.get(
        reverse("admin:collections_reconciliationreport_change", args=[reports["mpesa"].pk])
    ).content.decode()
    assert day.paybill_receipt in unmatched
    assert "SC-NOSUCH99" in unmatched


def test_reports_are_read_only_and_another_lenders_is_not_found(
    lender_a, make_agent, verified_client, operator, reports
) -> None:
    admin = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    other = reverse("admin:collections_reconciliationreport_change", args=[reports["other"].pk])
    assert admin.get(other).status_code == 404
    own = reverse("admin:collections_reconciliationreport_change", args=[reports["stripe"].pk])
    assert admin.post(own, {}).status_code == 403
    for client in (admin, verified_client(operator)):
        assert client.get(reverse("admin:collections_reconciliationreport_add")).status_code == 403
        delete = reverse(
            "admin:collections_reconciliationreport_delete", args=[reports["stripe"].pk]
        )
        assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ReconciliationReport.objects.count() == 4


def test_the_lenders_admin_builds_yesterdays_reports_of_their_lender_only(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    paybill_for(lender_a)
    paybill_for(lender_b)
    admin = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    assert 'id="build-reports"' in admin.get(reverse(LIST)).content.decode()
    assert admin.get(reverse(BUILD)).status_code == 405  # a button: POST only
    answer = admin.post(reverse(BUILD), follow=True)
    assert answer.redirect_chain[-1][0] == reverse(LIST)
    assert "1 reports built, 0 of them failed at the provider." in answer.content.decode()
    yesterday = lender_local_date(lender=lender_a) - timedelta(days=1)
    built = ReconciliationReport.objects.values_list("lender_id", "provider", "day")
    assert list(built) == [(lender_a.pk, "mpesa", yesterday)]
    admin.post(reverse(BUILD))  # again: replaced, not added
    assert ReconciliationReport.objects.count() == 1


@pytest.mark.parametrize("role", [Membership.Role.AGENT, Membership.Role.SUPERVISOR])
def test_only_the_lenders_admin_builds_reports(role, lender_a, make_agent, verified_client) -> None:
    paybill_for(lender_a)
    client = verified_client(make_agent(lender_a, role=role))
    assert 'id="build-reports"' not in client.get(reverse(LIST)).content.decode()
    assert client.post(reverse(BUILD)).status_code == 403
    assert not ReconciliationReport.objects.exists()


def test_an_operator_builds_every_lenders_reports(
    lender_a, lender_b, operator, verified_client
) -> None:
    paybill_for(lender_a)
    paybill_for(lender_b)
    verified_client(operator).post(reverse(BUILD))
    assert set(ReconciliationReport.objects.values_list("lender_id", flat=True)) == {
        lender_a.pk,
        lender_b.pk,
    }
