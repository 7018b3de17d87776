"""Days overdue, the next due installment and the schedule as payments arrive: grace days and
the lender's time zone."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from apps.collections.selectors import (
    loan_days_overdue,
    loan_next_due,
    loan_outstanding,
    loan_schedule,
)
from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from tests.collections.late_fees import SIGNED, at_local, make_loan

pytestmark = pytest.mark.django_db


def test_days_overdue_honours_grace_days_and_the_lenders_timezone(lender_a) -> None:
    loan = make_loan(lender_a)
    assert (
        loan_days_overdue(loan=loan, as_of=at_local(date(2026, 2, 13))) == 0
    )  # 3 days late: in grace
    assert loan_days_overdue(loan=loan, as_of=at_local(date(2026, 2, 14))) == 4
    # 21:30 UTC on 13 Feb is already 14 Feb in Nairobi
    assert loan_days_overdue(loan=loan, as_of=datetime(2026, 2, 13, 21, 30, tzinfo=UTC)) == 4


def test_next_due_and_schedule_follow_payments(lender_a) -> None:
    loan = make_loan(lender_a)
    payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal(1500), "KES"),
        channel="manual",
        provider="manual",
        provider_ref="m1",
        received_at=SIGNED,
        actor=Actor.system(),
    )
    nxt = loan_next_due(loan=loan)
    assert (nxt.sequence, nxt.due_date, nxt.amount.amount) == (2, date(2026, 3, 10), Decimal(500))
    rows = loan_schedule(loan=loan, as_of=at_local(date(2026, 3, 20)))
    assert [r.status for r in rows] == ["paid", "overdue", "upcoming"]
    assert loan_outstanding(loan=loan).amount == Decimal(1500)
