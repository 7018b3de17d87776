from datetime import date
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.collections.schedule import (
    Terms,
    add_months,
    build_schedule,
    due_dates,
    smallest_financed,
)
from apps.core.money import minor_units, quantize


def test_month_end_clamps_but_keeps_the_anchor_day() -> None:
    assert due_dates(date(2027, 12, 31), "monthly", 4) == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
    ]
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 31), 2) == date(2026, 3, 31)


def test_weekly_and_biweekly_steps() -> None:
    assert due_dates(date(2026, 11, 24), "weekly", 2) == [date(2026, 12, 1), date(2026, 12, 8)]
    assert due_dates(date(2026, 11, 24), "biweekly", 1) == [date(2026, 12, 8)]


def flat(n: int, rate: str, fee: str = "0", freq: str = "monthly") -> Terms:
    return Terms(
        installments=n,
        frequency=freq,
        interest_method="flat",
        interest_rate_percent=Decimal(rate),
        origination_fee_percent=Decimal(fee),
    )


def test_flat_interest_and_remainder_on_the_last_installment() -> None:
    schedule = build_schedule(
        terms=flat(3, "2", "1"),
        financed=Decimal("1000.00"),
        currency="KES",
        start=date(2026, 1, 15),
    )
    assert [line.principal for line in schedule.lines] == [
        Decimal("333.33"),
        Decimal("333.33"),
        Decimal("333.34"),
    ]
    assert schedule.total_interest == Decimal("60.00")
    assert schedule.total_fee == Decimal("10.00")
    assert schedule.total == Decimal("1070.00")


def test_jpy_has_no_minor_unit_and_kwd_has_three() -> None:
    jpy = build_schedule(
        terms=flat(3, "0"), financed=Decimal("1000"), currency="JPY", start=date(2026, 1, 1)
    )
    assert [line.principal for line in jpy.lines] == [Decimal(333), Decimal(333), Decimal(334)]
    kwd = build_schedule(
        terms=flat(3, "0"), financed=Decimal("1.000"), currency="KWD", start=date(2026, 1, 1)
    )
    assert [line.principal for line in kwd.lines] == [
        Decimal("0.333"),
        Decimal("0.333"),
        Decimal("0.334"),
    ]


def test_declining_balance_is_an_annuity_whose_last_installment_closes_the_balance() -> None:
    terms = Terms(
        installments=12,
        frequency="monthly",
        interest_method="declining",
        interest_rate_percent=Decimal("36"),
        origination_fee_percent=Decimal(0),
    )
    schedule = build_schedule(
        terms=terms, financed=Decimal("10000.00"), currency="MXN", start=date(2026, 1, 1)
    )
    totals = {line.principal + line.interest for line in schedule.lines[:-1]}
    assert totals == {Decimal("1004.62")}  # 10000 at 3% a month over 12 months
    assert schedule.total_principal == Decimal("10000.00")
    assert schedule.lines[0].interest == Decimal("300.00")


def test_zero_or_negative_financed_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        build_schedule(
            terms=flat(3, "1"), financed=Decimal(0), currency="KES", start=date(2026, 1, 1)
        )


terms_strategy = st.builds(
    Terms,
    installments=st.integers(1, 104),
    frequency=st.sampled_from(["weekly", "biweekly", "monthly"]),
    interest_method=st.sampled_from(["flat", "declining"]),
    interest_rate_percent=st.decimals(0, 100, places=4),
    origination_fee_percent=st.decimals(0, 50, places=4),
)


@settings(max_examples=300, deadline=None)
@given(
    terms=terms_strategy,
    financed=st.decimals(1, 10_000_000, places=3),
    currency=st.sampled_from(["KES", "JPY", "KWD", "MXN"]),
    start=st.dates(date(2020, 1, 1), date(2040, 12, 31)),
)
def test_any_valid_product_sums_exactly_and_never_goes_negative(
    terms, financed, currency, start
) -> None:
    schedule = build_schedule(terms=terms, financed=financed, currency=currency, start=start)
    places = minor_units(currency)
    assert schedule.total_principal == schedule.financed
    assert len(schedule.lines) == terms.installments
    for line in schedule.lines:
        for part in (line.principal, line.interest, line.fee):
            assert part >= 0
            assert -part.as_tuple().exponent <= max(places, 0) or part == part.to_integral_value()
    dates = [line.due_date for line in schedule.lines]
    assert dates == sorted(set(dates))
    if terms.frequency == "monthly":
        assert all(d.day == start.day or d.day < start.day for d in dates)


# --- rounding, and no installment of zero ---------------------------------------------


def declining(n: int, rate: str, fee: str = "0", freq: str = "monthly") -> Terms:
    return Terms(
        installments=n,
        frequency=freq,
        interest_method="declining",
        interest_rate_percent=Decimal(rate),
        origination_fee_percent=Decimal(fee),
    )


def test_spread_rounds_each_part_down_and_puts_the_remainder_on_the_last() -> None:
    # KES 1.00 in 6 parts is 0.1666...: 0.16 five times and 0.20 last (half up would be
    # 0.17 five times and 0.15 last); the 1% fee (0.01) is 0.00 five times and 0.01 last
    schedule = build_schedule(
        terms=flat(6, "0", "1"), financed=Decimal("1.00"), currency="KES", start=date(2026, 1, 1)
    )
    assert [line.principal for line in schedule.lines] == [Decimal("0.16")] * 5 + [Decimal("0.20")]
    assert [line.fee for line in schedule.lines] == [Decimal("0.00")] * 5 + [Decimal("0.01")]


def test_declining_payment_rounds_down_and_the_last_installment_takes_the_rest() -> None:
    # JPY 10,000 over 12 months at 30%: the annuity is 974.87 a month, so 974 (not 975)
    schedule = build_schedule(
        terms=declining(12, "30"), financed=Decimal(10000), currency="JPY", start=date(2026, 1, 1)
    )
    assert {line.total for line in schedule.lines[:-1]} == {Decimal(974)}
    assert schedule.lines[-1].total == Decimal(985)  # the balance left and its interest
    assert schedule.total_principal == Decimal(10000)


@pytest.mark.parametrize(
    ("terms", "financed", "currency"),
    [
        (declining(12, "30"), "10", "JPY"),  # paid off after 10 installments when rounded up
        (declining(47, "3", freq="weekly"), "10", "KES"),  # the 47th owed 0.00
        (declining(104, "7.25", freq="weekly"), "1.94", "KES"),  # no interest at all each week
        (flat(12, "0"), "11", "JPY"),
    ],
)
def test_no_installment_owes_zero_or_the_schedule_says_so_when_the_amount_is_tiny(
    terms, financed, currency
) -> None:
    schedule = build_schedule(
        terms=terms, financed=Decimal(financed), currency=currency, start=date(2026, 1, 1)
    )
    zero = [line.sequence for line in schedule.lines if line.total <= 0]
    assert schedule.every_installment_owes == (not zero)
    if zero:
        assert Decimal(financed) < smallest_financed(terms=terms, currency=currency)
    assert schedule.total_principal == Decimal(financed)


def test_smallest_financed_names_the_least_amount_the_terms_can_spread() -> None:
    assert smallest_financed(terms=declining(12, "30"), currency="JPY") == Decimal(12)
    assert smallest_financed(terms=flat(12, "0"), currency="JPY") == Decimal(12)
    assert smallest_financed(terms=flat(47, "0", freq="weekly"), currency="KES") == Decimal("0.47")
    assert smallest_financed(terms=flat(1, "0"), currency="KWD") == Decimal("0.001")


def _unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


@settings(max_examples=300, deadline=None)
@given(
    terms=terms_strategy,
    units=st.one_of(st.integers(1, 3_000), st.integers(1, 10**9)),
    currency=st.sampled_from(["KES", "JPY", "KWD", "MXN", "COP", "IDR"]),
)
def test_every_installment_owes_something_or_the_terms_are_refused(terms, units, currency) -> None:
    """Over amounts, currencies and terms: either every installment owes more than zero
    and the rounding is the documented one, or the amount is below the terms' smallest
    (which the quote refuses); the installments add up to financed + interest + fees."""
    unit, n = _unit(currency), terms.installments
    financed = unit * units
    schedule = build_schedule(
        terms=terms, financed=financed, currency=currency, start=date(2026, 1, 1)
    )
    minimum = smallest_financed(terms=terms, currency=currency)
    assert schedule.every_installment_owes == (financed >= minimum)
    assert (
        sum(line.total for line in schedule.lines)
        == financed + schedule.total_interest + schedule.total_fee
    )
    assert schedule.total_principal == financed
    # the fee: one total rounded half up, spread in equal parts rounded down
    fee_total = quantize(financed * terms.origination_fee_percent / 100, currency)
    assert schedule.total_fee == fee_total
    fee_part = (fee_total / n).quantize(unit, rounding=ROUND_DOWN)
    assert [line.fee for line in schedule.lines[:-1]] == [fee_part] * (n - 1)
    assert 0 <= schedule.lines[-1].fee - fee_part < unit * n
    if terms.interest_method == "flat":
        interest_total = quantize(financed * terms.interest_rate_percent / 100 * n, currency)
        assert schedule.total_interest == interest_total
        for total, part in ((financed, "principal"), (interest_total, "interest")):
            regular = (total / n).quantize(unit, rounding=ROUND_DOWN)
            assert [getattr(line, part) for line in schedule.lines[:-1]] == [regular] * (n - 1)
            assert 0 <= getattr(schedule.lines[-1], part) - regular < unit * n
    else:
        rate = (
            terms.interest_rate_percent
            / 100
            / {"weekly": 52, "biweekly": 26, "monthly": 12}[terms.frequency]
        )
        balance = financed
        for line in schedule.lines:  # interest half up on the balance of each period
            assert line.interest == quantize(balance * rate, currency)
            balance -= line.principal
        assert balance == 0
        regular = {
            line.principal + line.interest for line in schedule.lines[:-1] if line.principal > 0
        }
        assert len(regular) <= 1  # one payment, rounded down from the annuity
        if regular and rate > 0:
            exact = financed * rate / (1 - (1 + rate) ** (-n))
            assert regular.pop() <= exact


@settings(max_examples=150, deadline=None)
@given(
    terms=terms_strategy, currency=st.sampled_from(["KES", "JPY", "KWD"]), step=st.integers(1, 500)
)
def test_smallest_financed_is_the_threshold(terms, currency, step) -> None:
    unit = _unit(currency)
    minimum = smallest_financed(terms=terms, currency=currency)

    def owes(amount: Decimal) -> bool:
        start = date(2026, 1, 1)
        schedule = build_schedule(terms=terms, financed=amount, currency=currency, start=start)
        return schedule.every_installment_owes

    assert owes(minimum)
    assert owes(minimum + unit * step)
    if minimum > unit:
        assert not owes(minimum - unit)
