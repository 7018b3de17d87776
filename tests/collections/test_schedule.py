from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.collections.schedule import Terms, add_months, build_schedule, due_dates
from apps.core.money import minor_units


def test_month_end_clamps_but_keeps_the_anchor_day() -> None:
    assert due_dates(date(2027, 12, 31), "monthly", 4) == [
        date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30),
    ]  # fmt: skip
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 31), 2) == date(2026, 3, 31)


def test_weekly_and_biweekly_steps() -> None:
    assert due_dates(date(2026, 11, 24), "weekly", 2) == [date(2026, 12, 1), date(2026, 12, 8)]
    assert due_dates(date(2026, 11, 24), "biweekly", 1) == [date(2026, 12, 8)]


def flat(n: int, rate: str, fee: str = "0", freq: str = "monthly") -> Terms:
    return Terms(installments=n, frequency=freq, interest_method="flat",
                 interest_rate_percent=Decimal(rate), origination_fee_percent=Decimal(fee))  # fmt: skip


def test_flat_interest_and_remainder_on_the_last_installment() -> None:
    schedule = build_schedule(terms=flat(3, "2", "1"), financed=Decimal("1000.00"), currency="KES",
                              start=date(2026, 1, 15))  # fmt: skip
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
    terms = Terms(installments=12, frequency="monthly", interest_method="declining",
                  interest_rate_percent=Decimal("36"), origination_fee_percent=Decimal(0))  # fmt: skip
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
