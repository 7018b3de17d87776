"""One definition of "unpaid": an installment is unpaid while it owes more than zero.

The sweep, the customer's pages, the dashboard and the evidence file ask the same
question (``paid_at`` is null), and the database holds ``paid_at`` to "owes nothing".
"""

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from apps.collections.models import Installment
from apps.collections.portfolio import par
from apps.collections.selectors import loan_days_overdue, loan_next_due, loan_schedule
from apps.collections.services import loan_stage_sweep
from tests.collections.factories import signed_loan
from tests.lenders.factories import LenderFactory

pytestmark = pytest.mark.django_db
SIGNED = datetime(2026, 1, 10, 3, tzinfo=UTC)


def migration(name: str):
    return importlib.import_module(f"apps.collections.migrations.{name}")


def zero_installments_loan():
    """A JPY loan whose first eleven installments owe nothing and were stored unpaid, as the
    schedule spread 10 yen over 12 months before the quote refused such terms."""
    lender = LenderFactory(slug="jp", country="JP", currency="JPY", timezone="Asia/Tokyo")
    loan = signed_loan(
        lender,
        price="120000",
        down="0",
        signed_at=SIGNED,
        installments=12,
        interest_rate_percent=Decimal(0),
        origination_fee_percent=Decimal(0),
        min_down_payment_percent=Decimal(0),
        grace_days=0,
    )
    with connection.cursor() as cursor:  # the rows as the old code stored them
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks before ALTER
        cursor.execute(
            "ALTER TABLE collections_installment"
            " DROP CONSTRAINT installment_paid_at_iff_nothing_owed"
        )
        cursor.execute(
            "UPDATE collections_installment SET principal_amount = CASE WHEN sequence < 12 THEN 0"
            " ELSE 10 END, interest_amount = 0, fee_amount = 0 WHERE loan_id = %s",
            [loan.pk],
        )
    return loan


def sweep_60_days_on(loan):
    on = SIGNED.date() + timedelta(days=60)
    loan_stage_sweep(lender_id=loan.lender_id, business_date=on, id_from=0, id_to=10**12)
    loan.refresh_from_db()
    return on


def test_after_the_backfill_a_loan_whose_installments_owe_nothing_is_not_late_for_them() -> None:
    loan = zero_installments_loan()
    with connection.cursor() as cursor:  # and one that owes its whole amount, marked paid
        cursor.execute(
            "UPDATE collections_installment SET paid_at = %s WHERE loan_id = %s AND sequence = 12",
            [SIGNED, loan.pk],
        )
        cursor.execute(migration("0012_installment_paid_at_iff_nothing_owed").FIX_PAID_AT)
        cursor.execute(migration("0012_installment_paid_at_iff_nothing_owed").ADD_CHECK)
        cursor.execute(
            "ALTER TABLE collections_installment VALIDATE CONSTRAINT"
            " installment_paid_at_iff_nothing_owed"
        )  # 0013: every row holds
    assert Installment.objects.get(loan=loan, sequence=12).paid_at is None
    on = sweep_60_days_on(loan)
    assert loan.stage == "none"
    as_of = datetime.combine(on, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
    assert loan_days_overdue(loan=loan, as_of=as_of) == 0
    assert [r.status for r in loan_schedule(loan=loan, as_of=as_of)][:11] == ["paid"] * 11
    assert loan_next_due(loan=loan).sequence == 12
    assert par(lender_id=loan.lender_id, on=on).at_risk[1] == 0
    assert Installment.objects.filter(loan=loan, paid_at=SIGNED).count() == 11  # signed then


def test_the_database_refuses_paid_at_that_disagrees_with_what_is_owed() -> None:
    loan = signed_loan(LenderFactory(), installments=3)
    first = Installment.objects.filter(loan=loan, sequence=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        first.update(paid_at=SIGNED)  # it owes its whole amount
    with pytest.raises(IntegrityError), transaction.atomic():  # owes nothing, marked unpaid
        first.update(principal_amount=0, interest_amount=0, fee_amount=0, late_fee_amount=0)
