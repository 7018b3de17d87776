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


def test_the_lists_annotations_equal_the_one_loan_reads(lender_a, lender_b) -> None:
    """Days past due, what is due now and the phone's state, in SQL for a list, against the
    one-loan selectors (days overdue, the schedule) and the phones as they are."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.collections.models import Loan
    from apps.collections.selectors import loan_list_at_a_glance
    from apps.devices.services import device_ack
    from tests.collections.factories import noticed, signed_loan
    from tests.collections.sweeps import sweep, today
    from tests.devices.factories import enrolled_phone, phone_registered, valid_imei

    now = timezone.now()
    locked, _, _ = enrolled_phone(lender_a, signed_at=now - timedelta(days=70))
    behind, _, _ = enrolled_phone(lender_a, signed_at=now - timedelta(days=45))
    fresh, _, _ = enrolled_phone(lender_b, signed_at=now - timedelta(days=3))
    pending = phone_registered(
        signed_loan(lender_a, signed_at=now - timedelta(days=50)),
        imei=valid_imei(),
        brand="Tecno",
        model_name="Spark",
    )
    bare = signed_loan(lender_a, signed_at=now - timedelta(days=40))
    for device in (locked, behind):
        noticed(device.loan)
    sweep(locked.loan, today(lender_a))
    locked.refresh_from_db()
    device_ack(
        device_id=locked.pk, version=locked.desired_version, error_code="", actor=Actor.system()
    )
    rows = {loan.pk: loan for loan in loan_list_at_a_glance(Loan.objects.all())}
    assert len(rows) == 5
    for loan in Loan.objects.all():
        row = rows[loan.pk]
        assert row.days_past_due == loan_days_overdue(loan=loan)
        due = sum(
            (
                r.outstanding.amount
                for r in loan_schedule(loan=loan)
                if r.due_date <= row.local_today
            ),
            Decimal(0),
        )
        assert row.amount_due == due
    assert rows[locked.loan_id].days_past_due > 30
    assert rows[bare.pk].amount_due > 0
    assert rows[fresh.loan_id].amount_due == 0  # nothing due yet, in Mexico's date
    assert (rows[locked.loan_id].phone_state, rows[locked.loan_id].phone_behind) == (
        "lock",
        False,
    )
    # swept, not yet applied: the phone is still what it acknowledged, and behind
    assert (rows[behind.loan_id].phone_state, rows[behind.loan_id].phone_behind) == (
        "normal",
        True,
    )
    assert rows[pending.loan_id].phone_state == "not_enrolled"
    assert rows[bare.pk].phone_state == "no_phone"
    ranks = sorted(rows.values(), key=lambda r: r.phone_rank)
    assert (ranks[0].phone_state, ranks[-1].phone_state) == ("no_phone", "lock")
