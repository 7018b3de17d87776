from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.audit.models import AuditEvent
from apps.collections.models import Installment
from apps.collections.selectors import loan_days_overdue, loan_outstanding
from apps.collections.services import (
    installment_late_fees_assess,
    loan_stage_sweep,
    payment_record,
    payment_reverse,
)
from apps.core.actor import Actor
from apps.core.money import Money
from tests.collections.factories import signed_loan
from tests.collections.late_fees import SIGNED, at_local, make_loan

pytestmark = pytest.mark.django_db


def test_fixed_late_fee_is_assessed_once_per_overdue_installment(lender_a) -> None:
    loan = make_loan(lender_a, late_fee_type="fixed", late_fee_value=Decimal(75))
    in_grace, past_grace = at_local(date(2026, 2, 13)), at_local(date(2026, 2, 14))
    assert (
        installment_late_fees_assess(lender_id=lender_a.pk, as_of=in_grace, actor=Actor.system())
        == 0
    )
    assert (
        installment_late_fees_assess(lender_id=lender_a.pk, as_of=past_grace, actor=Actor.system())
        == 1
    )
    assert (
        installment_late_fees_assess(lender_id=lender_a.pk, as_of=past_grace, actor=Actor.system())
        == 0
    )
    first = Installment.objects.get(loan=loan, sequence=1)
    assert first.late_fee_amount == Decimal(75)
    assert AuditEvent.objects.filter(action="collections.late_fee.assessed").count() == 1
    assert loan_outstanding(loan=loan).amount == Decimal(3075)


def test_percent_late_fee_is_rounded_half_up_and_capped(lender_a) -> None:
    loan = make_loan(
        lender_a, late_fee_type="percent", late_fee_value=Decimal("2.5"), late_fee_cap=Decimal(20)
    )
    installment_late_fees_assess(
        lender_id=lender_a.pk, as_of=at_local(date(2026, 2, 14)), actor=Actor.system()
    )
    assert Installment.objects.get(loan=loan, sequence=1).late_fee_amount == Decimal(
        20
    )  # 25.00 capped
    loan2 = signed_loan(
        lender_a,
        price="3103",
        down="100",
        signed_at=SIGNED,
        installments=3,
        interest_rate_percent=Decimal(0),
        origination_fee_percent=Decimal(0),
        min_down_payment_percent=Decimal(0),
        grace_days=3,
        late_fee_type="percent",
        late_fee_value=Decimal("0.5"),
    )
    installment_late_fees_assess(
        lender_id=lender_a.pk, as_of=at_local(date(2026, 2, 14)), actor=Actor.system()
    )
    # 0.5% of 1001 = 5.005 -> 5.01: half up, not half even
    assert Installment.objects.get(loan=loan2, sequence=1).late_fee_amount == Decimal("5.01")


def test_a_late_fee_is_paid_first_by_the_next_payment(lender_a) -> None:
    loan = make_loan(lender_a, late_fee_type="fixed", late_fee_value=Decimal(75))
    installment_late_fees_assess(
        lender_id=lender_a.pk, as_of=at_local(date(2026, 2, 14)), actor=Actor.system()
    )
    payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal(100), "KES"),
        channel="manual",
        provider="manual",
        provider_ref="m1",
        received_at=at_local(date(2026, 2, 15)),
        actor=Actor.system(),
    )
    first = Installment.objects.get(loan=loan, sequence=1)
    assert (first.late_fee_paid, first.principal_paid) == (Decimal(75), Decimal(25))


def test_no_late_fee_for_paid_or_fee_less_loans(lender_a) -> None:
    make_loan(lender_a, late_fee_type="none", late_fee_value=Decimal(0))
    paid_loan = make_loan(lender_a, late_fee_type="fixed", late_fee_value=Decimal(75))
    payment_record(
        loan_id=paid_loan.pk,
        amount=Money(Decimal(1000), "KES"),
        channel="manual",
        provider="manual",
        provider_ref="m1",
        received_at=SIGNED + timedelta(days=1),
        actor=Actor.system(),
    )
    assert (
        installment_late_fees_assess(
            lender_id=lender_a.pk, as_of=at_local(date(2026, 2, 20)), actor=Actor.system()
        )
        == 0
    )


def assess(lender, at: datetime) -> int:
    return installment_late_fees_assess(lender_id=lender.pk, as_of=at, actor=Actor.system())


def pay(loan, amount: str, ref: str, received_at: datetime):
    return payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal(amount), loan.currency),
        channel="provider",
        provider="demo",
        provider_ref=ref,
        received_at=received_at,
        actor=Actor.system(),
    )


NAIROBI = ZoneInfo("Africa/Nairobi")
RUN = datetime(2026, 2, 11, 3, tzinfo=UTC)  # the night after 10 Feb, the first due date
IN_TIME = datetime(2026, 2, 10, 20, tzinfo=NAIROBI)  # received on the due date, in Nairobi


def fee_loan(lender):
    return make_loan(lender, grace_days=0, late_fee_type="fixed", late_fee_value=Decimal(75))


def test_money_received_in_time_but_posted_after_the_fee_run_takes_the_fee_back(lender_a) -> None:
    loan = fee_loan(lender_a)
    assert assess(lender_a, RUN) == 1  # unpaid as the rows stood: the fee stands for now
    pay(loan, "1000", "cb-1", IN_TIME)  # the provider's callback arrives after the run
    first = Installment.objects.get(loan=loan, sequence=1)
    assert (first.late_fee_amount, first.late_fee_paid, first.paid_at) == (0, 0, IN_TIME)
    assert loan_outstanding(loan=loan).amount == Decimal(2000)
    on = date(2026, 2, 20)
    assert loan_days_overdue(loan=loan, as_of=at_local(on)) == 0
    loan_stage_sweep(lender_id=lender_a.pk, business_date=on, id_from=0, id_to=10**12)
    loan.refresh_from_db()
    assert loan.stage == "none"
    reversed_ = AuditEvent.objects.get(action="collections.late_fee.reversed")
    assert (reversed_.data["old"], reversed_.data["new"]) == ("75.000", "0")


def test_the_fee_is_the_same_whether_the_payment_is_posted_before_or_after_the_run(
    lender_a,
) -> None:
    books = []
    for n, late in enumerate([IN_TIME, IN_TIME + timedelta(hours=5)]):  # in time, then late
        for posted_first in (True, False):
            loan = fee_loan(lender_a)
            if posted_first:
                pay(loan, "1000", f"p-{n}-{posted_first}", late)
            assess(lender_a, RUN if late < RUN else late + timedelta(hours=1))
            if not posted_first:
                pay(loan, "1000", f"p-{n}-{posted_first}", late)
            books.append(
                (
                    n,
                    list(
                        Installment.objects.filter(loan=loan)
                        .order_by("sequence")
                        .values_list(
                            "late_fee_amount", "late_fee_paid", "principal_paid", "paid_at"
                        )
                    ),
                )
            )
    assert books[0][1] == books[1][1]
    assert books[0][1][0][0] == 0  # in time: no fee
    assert books[2][1] == books[3][1]
    # received after it became late: the fee stands, and the money pays it first
    assert books[2][1][0][:3] == (Decimal(75), Decimal(75), Decimal(925))


def test_a_chargeback_of_the_money_that_came_in_time_brings_the_fee_back(lender_a) -> None:
    loan = fee_loan(lender_a)
    pay(loan, "1000", "p1", IN_TIME)
    assert assess(lender_a, RUN) == 0  # paid in time: reached, no fee
    payment_reverse(
        loan_id=loan.pk,
        kind="chargeback",
        amount=Money(Decimal(1000), "KES"),
        provider="demo",
        provider_ref="cb-1",
        payment_provider_ref="p1",
        received_at=RUN + timedelta(days=2),
        actor=Actor.system(),
    )
    first = Installment.objects.get(loan=loan, sequence=1)
    assert (first.late_fee_amount, first.paid_at) == (Decimal(75), None)
    assert loan_outstanding(loan=loan).amount == Decimal(3075)


def test_each_installment_is_reached_once_and_a_second_run_charges_nothing(lender_a) -> None:
    loan = fee_loan(lender_a)
    later = datetime(2026, 4, 20, tzinfo=UTC)  # all three installments are long late
    assert assess(lender_a, later) == 3
    assert assess(lender_a, later) == 0
    fees = Installment.objects.filter(loan=loan).values_list("late_fee_amount", flat=True)
    assert list(fees) == [Decimal(75)] * 3
    assert AuditEvent.objects.filter(action="collections.late_fee.assessed").count() == 3


def test_a_payoff_received_once_late_pays_the_fee_first_whether_posted_before_the_run_or_after(
    lender_a,
) -> None:
    received = datetime(2026, 2, 11, 0, 2, tzinfo=NAIROBI)  # two minutes late, before the run
    books = []
    for n, posted_first in enumerate((True, False)):
        loan = fee_loan(lender_a)
        if posted_first:
            pay(loan, "3000", f"all-{n}", received)
        assess(lender_a, datetime(2026, 2, 11, 0, 5, tzinfo=NAIROBI))
        if not posted_first:
            pay(loan, "3000", f"all-{n}", received)
        loan.refresh_from_db()
        books.append(
            (
                loan.status,
                loan.collateral_released_at,
                loan_outstanding(loan=loan).amount,
                list(
                    Installment.objects.filter(loan=loan)
                    .order_by("sequence")
                    .values_list("late_fee_amount", "late_fee_paid", "principal_paid")
                ),
            )
        )
    assert books[0] == books[1]
    status, released, owed, first = books[0][0], books[0][1], books[0][2], books[0][3][0]
    assert (status, released, owed) == ("active", None, Decimal(75))  # not paid off: not released
    assert first == (Decimal(75), Decimal(75), Decimal(1000))


def stamped_by_the_old_run(loan) -> None:
    """The books as the run before fees followed received time left them: a fee of 75 on
    installment 1, paid in time but posted after that run, and the loan raised for it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE collections_installment SET late_fee_amount = 75, late_fee_charged = 75,"
            " late_fee_assessed_at = %s, paid_at = NULL WHERE loan_id = %s AND sequence = 1",
            [RUN, loan.pk],
        )
        cursor.execute("UPDATE collections_loan SET stage = 'alarm' WHERE id = %s", [loan.pk])


def test_the_replay_command_takes_back_a_fee_the_old_run_stamped_on_money_received_in_time(
    lender_a,
) -> None:
    from django.core.management import call_command

    loan = fee_loan(lender_a)
    pay(loan, "1000", "cb-1", IN_TIME)
    stamped_by_the_old_run(loan)
    with time_machine.travel(datetime(2026, 2, 20, 9, tzinfo=UTC), tick=False):
        call_command("late_fees_replay")
        call_command("late_fees_replay")  # a second run changes nothing
    first = Installment.objects.get(loan=loan, sequence=1)
    assert (first.late_fee_amount, first.paid_at) == (0, IN_TIME)
    loan.refresh_from_db()
    assert loan.stage == "none"
    assert AuditEvent.objects.filter(action="collections.late_fee.reversed").count() == 1


def test_a_reversal_whose_replay_takes_a_fee_back_lowers_the_stage(lender_a) -> None:
    loan = fee_loan(lender_a)
    pay(loan, "1000", "cb-1", IN_TIME)
    pay(loan, "40", "tip", IN_TIME + timedelta(days=1))
    stamped_by_the_old_run(loan)
    loan.refresh_from_db()
    with time_machine.travel(datetime(2026, 2, 20, 9, tzinfo=UTC), tick=False):
        payment_reverse(
            loan_id=loan.pk,
            kind="refund",
            amount=Money(Decimal(40), "KES"),
            provider="demo",
            provider_ref="rf-1",
            payment_provider_ref="tip",
            received_at=RUN + timedelta(days=3),
            actor=Actor.system(),
        )
    loan.refresh_from_db()
    assert (Installment.objects.get(loan=loan, sequence=1).late_fee_amount, loan.stage) == (
        0,
        "none",
    )
