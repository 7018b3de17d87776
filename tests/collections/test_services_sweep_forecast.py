"""The sweep's forecast ("what would tomorrow's sweep do") against the sweep itself: on the
same loans, the forecast's changes are the ones the real sweep then makes, and making the
forecast writes nothing. A draft ladder's forecast, before it is published."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.collections.models import Loan, LoanStageChange
from apps.collections.services import (
    loan_promise_record,
    loan_stage_sweep,
    restrictions_suspend,
    sweep_forecast,
)
from apps.core.actor import Actor
from apps.lenders.models import RestrictionPolicyVersion, RestrictionStage
from apps.lenders.selectors import lender_local_date
from apps.lenders.services import StageSpec, restriction_stages_draft
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db
ALL = {"id_from": 0, "id_to": 10**12}


def late_loans(lender, days_ago: list[int]) -> list[Loan]:
    return [
        enrolled_phone(lender, signed_at=timezone.now() - timedelta(days=d))[0].loan
        for d in days_ago
    ]


@pytest.fixture
def book(lender_a):
    """Loans of every lateness around the ladder's steps (day 1, 3, 7, 14, 30 past the first
    due date), most told of the lock, one not (it waits for its notice), one under a
    promise; swept this morning."""
    today = lender_local_date(lender=lender_a)
    loans = late_loans(lender_a, [20, 31, 32, 33, 36, 37, 43, 44, 58, 59, 60, 61, 75])
    (untold,) = late_loans(lender_a, [59])
    for loan in loans:
        noticed(loan)
    loan_stage_sweep(lender_id=lender_a.pk, business_date=today, **ALL)
    promised = Loan.objects.get(pk=loans[9].pk)
    loan_promise_record(
        loan_id=promised.pk,
        lender_id=lender_a.pk,
        until=today + timedelta(days=3),
        actor=Actor.system(),
        reason="Pays on Friday.",
    )
    return {"today": today, "loans": [*loans, untold], "untold": untold, "promised": promised}


def test_the_forecast_equals_tomorrows_sweep_and_writes_nothing(lender_a, book) -> None:
    tomorrow = book["today"] + timedelta(days=1)
    stages = dict(Loan.objects.values_list("pk", "stage"))
    changes = LoanStageChange.objects.count()
    forecast = sweep_forecast(lender_id=lender_a.pk, business_date=tomorrow)
    assert dict(Loan.objects.values_list("pk", "stage")) == stages  # nothing written
    assert LoanStageChange.objects.count() == changes
    assert forecast.loans, "the fixture has loans that rise tomorrow"
    assert forecast.locking, "and loans that lock tomorrow"
    assert book["promised"].pk not in {loan.loan_id for loan in forecast.loans}

    loan_stage_sweep(lender_id=lender_a.pk, business_date=tomorrow, **ALL)
    swept = LoanStageChange.objects.filter(business_date=tomorrow, cause="sweep")
    made = sorted(swept.values_list("loan_id", "from_stage", "to_stage", "days_overdue"))
    assert made == sorted((f.loan_id, f.stage, f.target, f.days) for f in forecast.loans)
    by_change = {}
    for _, a, b, _ in made:
        by_change[(a, b)] = by_change.get((a, b), 0) + 1
    assert {(a, b): n for a, b, n in forecast.by_change()} == by_change
    locked = set(Loan.objects.filter(stage="lock", pk__in=[x.loan_id for x in forecast.loans]))
    assert {loan.pk for loan in locked} == {loan.loan_id for loan in forecast.locking}
    shops = forecast.by_shop()
    assert sum(n for _, n, _ in shops) == len(made)
    assert sum(n for _, _, n in shops) == len(forecast.locking)


def test_a_suspension_forecasts_nothing_as_the_sweep_raises_nothing(
    lender_a, book, operator
) -> None:
    restrictions_suspend(
        user=operator,
        actor=Actor.agent(operator),
        lender_id=lender_a.pk,
        country="",
        reason="Regulator's order.",
        lower_to_reminder=False,
    )
    forecast = sweep_forecast(lender_id=lender_a.pk, business_date=book["today"] + timedelta(1))
    assert forecast.suspended
    assert forecast.loans == []


def test_a_draft_ladder_forecasts_before_it_is_published(lender_a, book) -> None:
    """The same loans under a draft whose lock comes at day 60: tomorrow locks none of them,
    and the draft is not saved."""
    tomorrow = book["today"] + timedelta(days=1)
    version = Loan.objects.get(pk=book["loans"][0].pk).policy_version
    specs = [
        StageSpec(
            days_overdue=60 if stage.action == "lock" else stage.days_overdue,
            action=stage.action,
            messages=stage.messages,
            alarm_times=stage.alarm_times,
            blocked_packages=stage.blocked_packages,
            blocked_categories=stage.blocked_categories,
        )
        for stage in version.stages.order_by("position")
    ]
    versions, steps = RestrictionPolicyVersion.objects.count(), RestrictionStage.objects.count()
    draft = restriction_stages_draft(lender=lender_a, stages=specs)
    published = sweep_forecast(lender_id=lender_a.pk, business_date=tomorrow)
    what_if = sweep_forecast(
        lender_id=lender_a.pk, business_date=tomorrow, draft=(version.pk, draft)
    )
    assert published.locking
    assert what_if.locking == []
    # the loans the draft no longer locks tomorrow still rise as far as its ladder goes
    held = {f.loan_id for f in published.locking}
    assert {f.loan_id: f.target for f in what_if.loans if f.loan_id in held} == {
        pk: "block_apps" for pk in held if pk in {f.loan_id for f in what_if.loans}
    }
    assert (RestrictionPolicyVersion.objects.count(), RestrictionStage.objects.count()) == (
        versions,
        steps,
    )


def test_an_agent_reads_the_forecast_and_tries_a_draft_in_the_back_office(
    lender_a, book, make_agent, verified_client
) -> None:
    from django.urls import reverse

    tomorrow = book["today"] + timedelta(days=1)
    version = Loan.objects.get(pk=book["loans"][0].pk).policy_version
    forecast = sweep_forecast(lender_id=lender_a.pk, business_date=tomorrow)
    client = verified_client(make_agent(lender_a))
    on_version = client.get(
        reverse("admin:lenders_restrictionpolicyversion_change", args=[version.pk])
    ).content.decode()
    url = reverse("admin:collections_loan_sweep_forecast")
    assert f'{url}?lender={lender_a.pk}&amp;version={version.pk}"' in on_version
    page = client.get(url).content.decode()
    main = page.split('id="forecast"')[1].split('id="what-if"')[0]
    assert f'data-forecast="total">{len(forecast.loans)}<' in main
    assert f'data-forecast="locks">{len(forecast.locking)}<' in main
    for loan in forecast.locking:
        assert reverse("admin:collections_loan_change", args=[loan.loan_id]) in main
    lock = version.stages.get(action="lock")
    draft = client.get(url, {"version": version.pk, f"days_{lock.position}": "60"}).content.decode()
    assert 'data-forecast="locks">0<' in draft.split('id="what-if-forecast"')[1]
    too_early = client.get(url, {"version": version.pk, f"days_{lock.position}": "10"})
    assert 'id="draft-errors"' in too_early.content.decode()
