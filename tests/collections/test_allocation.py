"""Properties of the allocation arithmetic (no database)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.collections.allocation import (
    COMPONENTS,
    InstallmentDue,
    PaymentIn,
    allocate,
    ledger_delta,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
money = st.decimals(0, 5000, places=2)


@st.composite
def installments(draw):
    count = draw(st.integers(1, 8))
    result = []
    for seq in range(1, count + 1):
        due = {c: draw(money) for c in COMPONENTS}
        assessed = draw(st.none() | st.integers(0, 400).map(lambda d: T0 + timedelta(days=d)))
        if assessed is None:
            due["late_fee"] = Decimal(0)
        result.append(
            InstallmentDue(id=100 + seq, sequence=seq, due=due, late_fee_assessed_at=assessed)
        )
    return result


@st.composite
def payments(draw):
    count = draw(st.integers(0, 8))
    return [
        PaymentIn(
            id=n,
            received_at=T0 + timedelta(days=draw(st.integers(0, 400))),
            provider="p",
            provider_ref=f"ref-{n}",
            amount=draw(st.decimals(0, 8000, places=2)),
        )
        for n in range(1, count + 1)
    ]


def test_oldest_installment_first_fees_then_interest_then_principal() -> None:
    insts = [
        InstallmentDue(
            1,
            1,
            {
                "late_fee": Decimal(5),
                "fee": Decimal(1),
                "interest": Decimal(10),
                "principal": Decimal(100),
            },
            T0,
        ),
        InstallmentDue(
            2,
            2,
            {
                "late_fee": Decimal(0),
                "fee": Decimal(1),
                "interest": Decimal(10),
                "principal": Decimal(100),
            },
        ),
    ]
    result = allocate(insts, [PaymentIn(9, T0 + timedelta(days=1), "p", "r", Decimal(130))])
    assert result.lines == {
        (9, 1, "late_fee"): Decimal(5),
        (9, 1, "fee"): Decimal(1),
        (9, 1, "interest"): Decimal(10),
        (9, 1, "principal"): Decimal(100),
        (9, 2, "fee"): Decimal(1),
        (9, 2, "interest"): Decimal(10),
        (9, 2, "principal"): Decimal(3),
    }
    assert result.paid_at[1] == T0 + timedelta(days=1)
    assert result.paid_at[2] is None


def test_a_late_fee_is_not_paid_by_money_received_before_it_was_assessed() -> None:
    inst = InstallmentDue(
        1,
        1,
        {
            "late_fee": Decimal(5),
            "fee": Decimal(0),
            "interest": Decimal(0),
            "principal": Decimal(10),
        },
        late_fee_assessed_at=T0 + timedelta(days=5),
    )
    early = allocate([inst], [PaymentIn(1, T0, "p", "a", Decimal(20))])
    assert early.paid[1]["late_fee"] == 0
    assert early.unapplied[1] == Decimal(10)


@settings(max_examples=400, deadline=None)
@given(insts=installments(), pays=payments())
def test_allocations_sum_to_each_payment_and_nothing_is_overpaid(insts, pays) -> None:
    result = allocate(insts, pays)
    for payment in pays:
        allocated = sum((a for (p, _, _), a in result.lines.items() if p == payment.id), Decimal(0))
        assert allocated + result.unapplied[payment.id] == payment.amount
        assert result.unapplied[payment.id] >= 0
    for inst in insts:
        for c in COMPONENTS:
            assert 0 <= result.paid[inst.id][c] <= inst.due[c]
    assert all(a > 0 for a in result.lines.values())


@settings(max_examples=300, deadline=None)
@given(insts=installments(), pays=payments(), seed=st.randoms(use_true_random=False))
def test_arrival_order_does_not_change_the_result(insts, pays, seed) -> None:
    shuffled = list(pays)
    seed.shuffle(shuffled)
    assert allocate(insts, pays).lines == allocate(list(reversed(insts)), shuffled).lines


@given(
    st.dictionaries(
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.sampled_from(COMPONENTS)), money
    ),
    st.dictionaries(
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.sampled_from(COMPONENTS)), money
    ),
)
def test_ledger_delta_brings_current_to_target(target, current) -> None:
    delta = ledger_delta(target, current)
    for key in target.keys() | current.keys():
        assert current.get(key, Decimal(0)) + delta.get(key, Decimal(0)) == target.get(
            key, Decimal(0)
        )
    assert all(v != 0 for v in delta.values())


@settings(max_examples=300, deadline=None)
@given(insts=installments(), pays=payments())
def test_allocating_payments_one_by_one_in_order_equals_the_full_replay(insts, pays) -> None:
    from apps.collections.allocation import allocate_next

    full = allocate(insts, pays)
    paid = {i.id: dict.fromkeys(COMPONENTS, Decimal(0)) for i in insts}
    paid_at = {i.id: None for i in insts}
    lines: dict = {}
    for payment in sorted(pays, key=lambda p: p.order):
        step = allocate_next(insts, paid, paid_at, payment)
        paid, paid_at = step.paid, step.paid_at
        lines.update(step.lines)
        assert step.unapplied[payment.id] == full.unapplied[payment.id]
    assert (paid, paid_at, lines) == (full.paid, full.paid_at, full.lines)
