"""The books equal the replay whatever the posting order: late-fee runs interleaved with
payments and reversals posted late, early or out of order.

The oracle is written here from the rules, not from allocation.py: money is applied in the
order it was received, oldest installment first, late fee before the installment itself; an
installment owes its late fee if it was not paid by the money received before it became late
(the start of the lender's local day after its due date and grace days), and only money
received from then on pays that fee.
"""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.collections.models import Installment
from apps.collections.selectors import loan_outstanding
from apps.collections.services import installment_late_fees_assess, payment_record, payment_reverse
from apps.core.actor import Actor
from apps.core.money import Money
from tests.collections.factories import signed_loan
from tests.lenders.factories import LenderFactory

pytestmark = pytest.mark.django_db
SIGNED = datetime(2026, 1, 10, 9, tzinfo=UTC)  # due 10 Feb, 10 Mar, 10 Apr (Nairobi)
END = SIGNED + timedelta(days=130)
# 0.5% of an installment of 1001 is 5.005: 5.01 rounded half up; capped at 5 when asked
FEES = {
    "fixed": (Decimal(75), None),
    "percent": (Decimal("0.5"), None),
    "percent capped": (Decimal("0.5"), Decimal(5)),
}


def oracle(dues, late_froms, fee_if_late, payments):
    """(late fee owed, late fee paid, principal paid) per installment, and what is owed."""
    n = len(dues)
    fee = [None] * n  # undecided until money received at or after late_from, or the end
    fee_paid, base_paid = [Decimal(0)] * n, [Decimal(0)] * n

    def decide(until):
        for i in range(n):
            if fee[i] is None and (until is None or late_froms[i] <= until):
                fee[i] = fee_if_late if base_paid[i] < dues[i] else Decimal(0)

    for received_at, amount in sorted(payments):
        decide(received_at)
        for i in range(n):
            if fee[i] and received_at >= late_froms[i]:
                take = min(amount, fee[i] - fee_paid[i])
                fee_paid[i] += take
                amount -= take
            take = min(amount, dues[i] - base_paid[i])
            base_paid[i] += take
            amount -= take
    decide(None)
    owed = sum(dues) + sum(fee) - sum(base_paid) - sum(fee_paid)
    return list(zip(fee, fee_paid, base_paid, strict=True)), owed


payment = st.tuples(
    st.integers(min_value=0, max_value=120 * 24),  # hours after signing it was received
    st.sampled_from([200, 500, 925, 1000, 1075, 1500]),  # amount
    st.integers(min_value=0, max_value=15 * 24),  # hours until it is posted
    st.sampled_from([None, 0.5, 1.0]),  # a reversal of this share of it, posted later
    st.integers(min_value=0, max_value=30 * 24),  # hours until the reversal is posted
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payments=st.lists(payment, max_size=6),
    grace=st.sampled_from([0, 3]),
    fee_type=st.sampled_from(sorted(FEES)),
    runs=st.lists(st.integers(min_value=0, max_value=125 * 24), max_size=6),
)
def test_the_books_equal_the_replay_whatever_the_posting_order(
    payments, grace, fee_type, runs
) -> None:
    sid = transaction.savepoint()
    try:
        _play(payments, grace, fee_type, runs)
    finally:
        transaction.savepoint_rollback(sid)


def _play(payments, grace, fee_type, runs) -> None:
    lender = LenderFactory(slug="replay")
    value, cap = FEES[fee_type]
    loan = signed_loan(
        lender,
        price="3103",
        down="100",
        signed_at=SIGNED,
        installments=3,
        interest_rate_percent=Decimal(0),
        origination_fee_percent=Decimal(0),
        min_down_payment_percent=Decimal(0),
        grace_days=grace,
        late_fee_type=fee_type.split()[0],
        late_fee_value=value,
        late_fee_cap=cap,
    )
    installments = list(Installment.objects.filter(loan=loan).order_by("sequence"))
    # what happens, at the moment it is posted: payments, reversals and fee runs interleaved
    timeline = [(SIGNED + timedelta(hours=h), "run", None) for h in runs]
    net = []
    for n, (hours, amount, delay, share, rdelay) in enumerate(payments):
        received = SIGNED + timedelta(hours=hours)
        timeline.append((received + timedelta(hours=delay), "pay", (n, received, amount)))
        back = (
            Decimal(0)
            if share is None
            else (Decimal(amount) * Decimal(str(share))).quantize(Decimal(1))
        )
        if back:
            when = received + timedelta(hours=rdelay)
            timeline.append((when, "reverse", (n, when, back)))
        net.append((received, Decimal(amount) - back))
    timeline.append((END, "run", None))
    for at, kind, args in sorted(timeline, key=lambda e: (e[0], e[1])):
        if kind == "run":
            installment_late_fees_assess(lender_id=lender.pk, as_of=at, actor=Actor.system())
        elif kind == "pay":
            n, received, amount = args
            payment_record(
                loan_id=loan.pk,
                amount=Money(Decimal(amount), "KES"),
                channel="provider",
                provider="demo",
                provider_ref=f"p{n}",
                received_at=received,
                actor=Actor.system(),
            )
        else:
            n, when, back = args
            payment_reverse(
                loan_id=loan.pk,
                kind="refund",
                amount=Money(back, "KES"),
                provider="demo",
                provider_ref=f"r{n}",
                payment_provider_ref=f"p{n}",
                received_at=when,
                actor=Actor.system(),
            )
    fee_if_late = value
    if fee_type != "fixed":  # of the installment, rounded half up to the cent, then capped
        fee_if_late = (Decimal(1001) * value / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
        fee_if_late = min(fee_if_late, cap) if cap else fee_if_late
    expected, owed = oracle(
        [i.principal_amount for i in installments],
        [i.late_from for i in installments],
        fee_if_late,
        net,
    )
    books = [
        (i.late_fee_amount, i.late_fee_paid, i.principal_paid)
        for i in Installment.objects.filter(loan=loan).order_by("sequence")
    ]
    assert books == expected
    assert loan_outstanding(loan=loan).amount == owed
    for inst, (fee, fee_paid, base_paid) in zip(
        Installment.objects.filter(loan=loan).order_by("sequence"), expected, strict=True
    ):
        assert (inst.paid_at is None) == (fee + inst.principal_amount > fee_paid + base_paid)
