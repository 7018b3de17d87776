from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.money import ISO_4217_CODES, Money, UnknownCurrency, minor_units, quantize


@pytest.mark.parametrize(
    ("currency", "places"), [("KES", 2), ("MXN", 2), ("JPY", 0), ("KWD", 3), ("CLP", 0)]
)
def test_minor_units_follow_iso_4217(currency, places) -> None:
    assert minor_units(currency) == places


def test_rounding_is_half_up_to_the_minor_unit() -> None:
    assert quantize(Decimal("10.005"), "KES") == Decimal("10.01")
    assert quantize(Decimal("10.0049"), "KES") == Decimal("10.00")
    assert quantize(Decimal("100.5"), "JPY") == Decimal("101")
    assert quantize(Decimal("1.0005"), "KWD") == Decimal("1.001")


@given(
    st.decimals(min_value=0, max_value=10**12, places=6), st.sampled_from(sorted(ISO_4217_CODES))
)
def test_quantized_amounts_have_exactly_the_currency_places(amount, currency) -> None:
    assert -quantize(amount, currency).as_tuple().exponent == minor_units(currency)


def test_money_refuses_floats_and_unknown_currencies() -> None:
    with pytest.raises(TypeError):
        Money(10.5, "KES")  # type: ignore[arg-type]  # the float is what this test passes
    with pytest.raises(UnknownCurrency):
        Money(Decimal("1"), "XXX")
    assert Money(Decimal("1.50"), "KES").amount == Decimal("1.50")
