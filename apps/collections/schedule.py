"""Installment schedules: pure arithmetic, no database.

Rounding happens here and in payment allocation only (STYLE.md section 6),
and always to the currency's minor unit (JPY 0, KES 2, KWD 3):

- a total (the flat interest, the origination fee) is rounded half up once,
  as ``apps.core.money.quantize`` rounds everything;
- a total spread over the installments (principal, flat interest, fee) is cut
  into equal parts rounded DOWN, and the remainder goes on the last
  installment: the parts add up to the total exactly, no part is negative, and
  the last is the regular part plus less than one minor unit per installment;
- a declining-balance payment is rounded DOWN too, and each period's interest
  (on the balance) half up; the last installment takes the balance left.

Rounding down is the choice that is right for the customer and the books: no
regular installment asks for more than its exact share, and the balance is
never used up before the last installment (rounding half up would overshoot:
JPY 10 over 12 months at 30% paid it off in 10 installments and left two of
zero). Each rounding rule names its test in tests/collections/test_schedule.py:
``test_spread_rounds_each_part_down_and_puts_the_remainder_on_the_last``,
``test_declining_payment_rounds_down_and_the_last_installment_takes_the_rest``
and the hypothesis property ``test_every_installment_owes_something_or_the_terms_are_refused``.

Some amounts are too small for some terms: an installment would owe nothing
(JPY 10 over 12 months, KES 0.30 over 47 weeks). ``Schedule.every_installment_owes``
tells, and ``smallest_financed`` finds the least amount the terms can spread;
the quote (``loan_quote``) refuses the rest and names that amount.
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

    @property
    def every_installment_owes(self) -> bool:
        """Whether each installment owes more than zero (a schedule is only sold if so)."""
        return all(line.total > 0 for line in self.lines)


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


def _unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def _spread(total: Decimal, count: int, currency: str) -> list[Decimal]:
    """``count`` equal parts of ``total``, rounded down; the remainder on the last part.

    Down, so the remainder is never negative and less than ``count`` minor units
    (half up, KES 0.11 in 7 parts would be six of 0.02 and a last of -0.01)."""
    part = (total / count).quantize(_unit(currency), rounding=ROUND_DOWN)
    return [part] * (count - 1) + [total - part * (count - 1)]


def _declining(
    *, financed: Decimal, rate: Decimal, n: int, currency: str
) -> tuple[list[Decimal], list[Decimal]]:
    """The principal and interest parts of a declining-balance annuity (rounding as the module
    says): each regular installment owes the payment (its interest first), the last one the
    balance left with its interest."""
    unit = _unit(currency)
    exact = financed / n if rate == 0 else financed * rate / (1 - (1 + rate) ** (-n))
    # Down, not half up: a payment rounded up pays the balance off early. Where each
    # period's interest rounds to (nearly) nothing, even that can use the balance up
    # before the last installment (KES 1.94 over 104 weeks at 7.25%: 0.02 a week and no
    # interest), so the payment comes down a minor unit at a time until it lasts; only
    # amounts of a few minor units per installment ever need it.
    payment = exact.quantize(unit, rounding=ROUND_DOWN)
    while True:
        principals, interests, balance = [], [], financed
        for _ in range(n - 1):
            interest = quantize(balance * rate, currency)
            principal = min(balance, max(payment - interest, Decimal(0)))
            principals.append(principal)
            interests.append(interest)
            balance -= principal
        if balance > 0 or payment <= 0:
            break
        payment -= unit
    principals.append(balance)
    interests.append(quantize(balance * rate, currency))
    return principals, interests


def build_schedule(*, terms: Terms, financed: Decimal, currency: str, start: date) -> Schedule:
    """The installments of a loan of ``financed`` signed on ``start`` (the lender's local date).

    Flat interest: ``rate`` percent of the financed amount per period, spread
    evenly. Declining balance: an annuity at ``rate / periods per year`` per
    period, interest on the remaining balance, the last installment taking
    whatever balance is left. The origination fee is spread evenly. Rounding
    as the module says. The sum of the installments is exactly the financed
    amount plus the interest and fee totals; an installment may owe zero when
    the amount is too small for the terms (``every_installment_owes``), which
    the caller must refuse.
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
            principals, interests = _declining(financed=financed, rate=rate, n=n, currency=currency)

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


def smallest_financed(*, terms: Terms, currency: str) -> Decimal:
    """The least amount ``terms`` can finance with every installment owing more than zero.

    Every amount from it up is accepted and every amount below it refused: the
    hypothesis property ``test_smallest_financed_is_the_threshold`` checks the
    amounts around it for any terms. Found by doubling, then halving the interval
    (about 2 log2(amount in minor units) schedules).
    """
    unit, start = _unit(currency), date(2000, 1, 1)  # due dates do not change the amounts

    def owes(units: int) -> bool:
        schedule = build_schedule(
            terms=terms, financed=unit * units, currency=currency, start=start
        )
        return schedule.every_installment_owes

    high = 1
    while not owes(high):
        high *= 2
    low = high // 2  # refused (or zero)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if owes(middle) else (middle, high)
    return unit * high
