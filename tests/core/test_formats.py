"""Dates, numbers and money as each language writes them: day-month-year in Kenya's English
and Mexico's Spanish, and money in the currency's minor units (KES 15,000.00, never
15000.000)."""

from datetime import date
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import formats, translation

from apps.core.money import Money

DAY = date(2027, 1, 5)


@pytest.mark.parametrize(
    ("language", "short", "long"),
    [
        ("en", "05/01/2027", "5 January 2027"),
        ("es", "05/01/2027", "5 de enero de 2027"),
        ("zh-hans", "2027年1月5日", "2027年1月5日"),
    ],
)
def test_dates_are_day_month_year_when_the_language_writes_them_so(language, short, long) -> None:
    with translation.override(language):
        assert formats.date_format(DAY, "SHORT_DATE_FORMAT") == short
        assert formats.date_format(DAY, "DATE_FORMAT") == long


@pytest.mark.parametrize(
    ("language", "amount", "currency", "shown"),
    [
        ("en", Decimal("15000.000"), "KES", "KES 15,000.00"),
        ("es", Decimal("1650.5"), "MXN", "MXN 1,650.50"),
        ("en", Decimal("0.000"), "KES", "KES 0.00"),
    ],
)
def test_the_money_filter_writes_the_currencys_minor_units(
    language, amount, currency, shown
) -> None:
    page = Template("{% load money %}{{ a|money }}|{{ b|money:c }}")
    with translation.override(language):
        text = page.render(Context({"a": Money(amount, currency), "b": amount, "c": currency}))
    assert text == f"{shown}|{shown}"
