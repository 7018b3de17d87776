"""Installment schedules: pure arithmetic, no database.

Rounding happens here and in payment allocation only (STYLE.md section 6):
every component is quantized to the currency's minor unit with ROUND_HALF_UP
and the remainder goes on the last installment, so the parts add up to the
totals exactly (tests/collections/test_schedule.py, with hypothesis).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from apps.core.money import minor_units, quantize

HUNDRED = Decimal(100)


class Frequency:
    WEEKLY, BIWEEKLY, MONTHLY = "weekly", "biweekly", "monthly"
    PERIODS_PER_YEAR = {WEEKLY: 52, BIWEEKLY: 26, MONTHLY: 12}


@dataclass(frozen=True, slots=True)
class Terms:
    """What a schedule depends on: copied from the product when a loan is signed."""

    installments: int
    frequency: str
    interest_method: str  # "flat" (per period) or "declining" (annual)
    interest_rate_percent: Decimal
    origination_fee_percent: Decimal


@dataclass(frozen=True, slots=True)
class Line:
    sequence: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee


@dataclass(frozen=True, slots=True)
class Schedule:
    currency: str
    financed: Decimal
    lines: tuple[Line, ...]

    @property
    def total_principal(self) -> Decimal:
        return sum((line.principal for line in self.lines), Decimal(0))

    @property
    def total_interest(self) -> Decimal:
        return sum((line.interest for line in self.lines), Decimal(0))

    @property
    def total_fee(self) -> Decimal:
        return sum((line.fee for line in self.lines), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.total_principal + self.total_interest + self.total_fee


def add_months(anchor: date, months: int) -> date:
    """``anchor`` plus ``months``, clamped to the month's end but keeping the anchor day.

    31 Jan -> 28/29 Feb -> 31 Mar: each date is computed from the anchor, never
    from the previous (clamped) date.
    """
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def due_dates(start: date, frequency: str, count: int) -> list[date]:
    if frequency == Frequency.MONTHLY:
        return [add_months(start, k) for k in range(1, count + 1)]
    step = {Frequency.WEEKLY: 7, Frequency.BIWEEKLY: 14}[frequency]
    return [start + timedelta(days=step * k) for k in range(1, count + 1)]


def _spread(total: Decimal, count: int, currency: str) -> list[Decimal]:
    """``count`` equal parts of ``total``, rounded down; the remainder on the last part."""
    unit = Decimal(1).scaleb(-minor_units(currency))
    part = (total / count).quantize(unit, rounding=ROUND_DOWN)
    return [part] * (count - 1) + [total - part * (count - 1)]


def build_schedule(*, terms: Terms, financed: Decimal, currency: str, start: date) -> Schedule:
    """The installments of a loan of ``financed`` signed on ``start`` (the lender's local date).

    Flat interest: ``rate`` percent of the financed amount per period, spread
    evenly. Declining balance: an annuity at ``rate / periods per year`` per
    period, interest on the remaining balance, the last installment taking
    whatever balance is left. The origination fee is spread evenly.
    """
    if financed <= 0:
        raise ValueError("financed amount must be positive")
    financed = quantize(financed, currency)
    n = terms.installments
    dates = due_dates(start, terms.frequency, n)
    fees = _spread(
        quantize(financed * terms.origination_fee_percent / HUNDRED, currency), n, currency
    )

    with localcontext() as ctx:
        ctx.prec = 34
        if terms.interest_method == "flat":
            principals = _spread(financed, n, currency)
            interest_total = quantize(
                financed * terms.interest_rate_percent / HUNDRED * n, currency
            )
            interests = _spread(interest_total, n, currency)
        else:
            rate = (
                terms.interest_rate_percent / HUNDRED / Frequency.PERIODS_PER_YEAR[terms.frequency]
            )
            payment = financed / n if rate == 0 else financed * rate / (1 - (1 + rate) ** (-n))
            payment = quantize(payment, currency)
            principals, interests, balance = [], [], financed
            for k in range(n):
                interest = quantize(balance * rate, currency)
                principal = (
                    balance if k == n - 1 else min(balance, max(payment - interest, Decimal(0)))
                )
                principals.append(principal)
                interests.append(interest)
                balance -= principal

    lines = tuple(
        Line(
            sequence=k + 1,
            due_date=dates[k],
            principal=principals[k],
            interest=interests[k],
            fee=fees[k],
        )
        for k in range(n)
    )
    return Schedule(currency=currency, financed=financed, lines=lines)
