"""The portfolio dashboard's figures, each checked against the fixture portfolio's answer worked
out here from its installments, payments and history, not by the SQL under test."""

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.collections import portfolio
from apps.collections.models import Loan, LoanStageChange
from apps.lenders.selectors import lender_local_date

pytestmark = pytest.mark.django_db


def days_late(loan: Loan, on) -> int:
    """By hand: days since the oldest installment due before ``on`` and not fully paid by its end."""
    end = datetime.combine(
        on + timedelta(days=1), datetime.min.time(), tzinfo=ZoneInfo(loan.lender.timezone)
    )
    unpaid = [
        i.due_date
        for i in loan.installments.all()
        if i.due_date < on and (i.paid_at is None or i.paid_at >= end)
    ]
    return (on - min(unpaid)).days if unpaid else 0


def test_par_counts_the_balance_of_late_loans_over_the_portfolio(lender_a, book) -> None:
    today = lender_local_date(lender=lender_a)
    outstanding = {
        n: sum(i.total_due - i.total_paid for i in loan.installments.all())
        for n, loan in book.items()
    }
    late = {n: days_late(loan, today) for n, loan in book.items()}
    assert late["A"] == late["B"] == late["G"] == 0
    assert 7 < late["E"] <= 30 < late["F"] <= 60 < late["C"]
    figures = portfolio.par(lender_id=lender_a.pk, on=today)
    assert figures.gross == sum(outstanding.values())
    assert figures.at_risk == {
        1: outstanding["E"] + outstanding["F"] + outstanding["C"],
        7: outstanding["E"] + outstanding["F"] + outstanding["C"],
        30: outstanding["F"] + outstanding["C"],
        60: outstanding["C"],
    }
    assert figures.ratio(60) == outstanding["C"] / sum(outstanding.values())
    by_month = {
        row.label: (row.loans, row.at_risk)
        for row in portfolio.par30_by_month_of_sale(lender_id=lender_a.pk, on=today)
    }
    expected: dict[str, list] = {}
    for n, loan in book.items():
        month = loan.start_date.strftime("%Y-%m")
        count, risk = expected.get(month, [0, Decimal(0)])
        expected[month] = [count + 1, risk + (outstanding[n] if late[n] > 30 else 0)]
    assert by_month == {m: (c, r) for m, (c, r) in expected.items()}
    by_shop = portfolio.par30_by_shop(lender_id=lender_a.pk, on=today)
    assert sum(row.loans for row in by_shop) == 6
    assert sum(row.at_risk for row in by_shop) == outstanding["F"] + outstanding["C"]


def test_loans_by_stage_and_the_cure_rate_of_each_stage(lender_a, book) -> None:
    assert portfolio.stage_counts(lender_id=lender_a.pk) == {
        **dict.fromkeys(("none", "reminder", "wallpaper", "alarm", "block_apps", "lock"), 0),
        **Counter(loan.stage for loan in book.values()),
    }
    raised = {
        loan: change.to_stage
        for loan, change in ((c.loan_id, c) for c in LoanStageChange.objects.filter(cause="sweep"))
    }
    reached = Counter(raised.values())
    cured = Counter(raised[book[n].pk] for n in ("B",))  # G paid 5 days after: within 7 days too
    cured[raised[book["G"].pk]] += 1
    cures = {
        c.stage: (c.reached, c.cured)
        for c in portfolio.cure_rates(lender_id=lender_a.pk, now=timezone.now())
    }
    assert cures == {stage: (reached.get(stage, 0), cured.get(stage, 0)) for stage in cures}
    assert sum(reached.values()) == 5  # A was not late 10 days ago


def test_time_from_payment_to_unlocked_phone(lender_a, book) -> None:
    unlock = portfolio.unlock_times(lender_id=lender_a.pk)
    assert unlock.count == 2
    assert unlock.p50_seconds == pytest.approx(60.0)  # the median of 30 s and 90 s
    assert unlock.p95_seconds == pytest.approx(30 + 0.95 * 60)


def test_roll_rates_compare_each_loans_bucket_month_on_month(lender_a, book) -> None:
    today = lender_local_date(lender=lender_a)
    start, end = portfolio.month_ends(on=today, count=2)
    rolls = portfolio.roll_rates(
        lender_id=lender_a.pk, start=start, end=end, tz=ZoneInfo(lender_a.timezone)
    )

    def bucket(days: int) -> int:
        return next(i for i, top in enumerate((0, 30, 60, 90)) if days <= top) if days <= 90 else 4

    expected = Counter(
        (bucket(days_late(loan, start)), bucket(days_late(loan, end)))
        for loan in book.values()
        if loan.start_date <= start
    )
    assert rolls.counts == dict(expected)
