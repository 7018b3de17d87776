"""Reads for the portfolio dashboard: every figure one aggregate SQL statement over a lender's
loans, never a Python loop over them.

- loans by stage (active loans);
- PAR N: the outstanding balance of active loans whose oldest unpaid installment is more than
  N days past its due date, over the outstanding balance of all active loans;
- the same PAR 30 by shop and by month of sale;
- roll rates: each active loan's delinquency bucket at the end of one month against the end
  of the next (an installment counts as unpaid at a date if it was not fully paid by then);
- cure rate per restriction stage: of the loans the sweep raised to a stage, the share a
  payment brought down within 7 days (only raises at least 7 days old count);
- time from payment to unlock: from the stage change a payment caused to the phone's
  acknowledgement of the state it was given (its audit event), p50 and p95.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from psycopg import sql

from apps.collections.models import STAGE_ORDER
from apps.collections.sql import (
    CURE_RATES,
    PAR,
    PAR30_BY_MONTH_OF_SALE,
    PAR30_BY_SHOP,
    PAR_DAYS,
    ROLL_RATES,
    STAGE_COUNTS,
    UNLOCK_TIMES,
)
from apps.lenders.selectors import lender_local_date

BUCKETS = ("current", "1-30", "31-60", "61-90", "91+")
CURE_WINDOW = timedelta(days=7)


def _rows(statement: sql.Composable, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def stage_counts(*, lender_id: int) -> dict[str, int]:
    rows = dict(_rows(STAGE_COUNTS, {"lender": lender_id}))
    return {stage: rows.get(stage, 0) for stage in STAGE_ORDER}


@dataclass(frozen=True, slots=True)
class Par:
    gross: Decimal
    at_risk: dict[int, Decimal]  # days -> outstanding of loans more than that many days late

    def ratio(self, days: int) -> Decimal:
        return (self.at_risk[days] / self.gross) if self.gross else Decimal(0)


def par(*, lender_id: int, on: date) -> Par:
    row = _rows(PAR, {"lender": lender_id, "on": on})[0]
    return Par(gross=row[0], at_risk=dict(zip(PAR_DAYS, row[1:], strict=True)))


@dataclass(frozen=True, slots=True)
class ParRow:
    label: str
    loans: int
    gross: Decimal
    at_risk: Decimal  # more than 30 days late

    @property
    def ratio(self) -> Decimal:
        return self.at_risk / self.gross if self.gross else Decimal(0)

    @property
    def percent(self) -> str:
        return f"{self.ratio * 100:.1f}%"


def par30_by_shop(*, lender_id: int, on: date) -> list[ParRow]:
    rows = _rows(PAR30_BY_SHOP, {"lender": lender_id, "on": on})
    return [ParRow(*row) for row in rows]


def par30_by_month_of_sale(*, lender_id: int, on: date) -> list[ParRow]:
    rows = _rows(PAR30_BY_MONTH_OF_SALE, {"lender": lender_id, "on": on})
    return [ParRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class RollRates:
    start: date
    end: date
    counts: dict[tuple[int, int], int]  # (bucket at start, bucket at end) -> loans

    def from_total(self, bucket: int) -> int:
        return sum(n for (f, _), n in self.counts.items() if f == bucket)

    def rolled_forward(self, bucket: int) -> Decimal:
        """The share of the loans in ``bucket`` at the start that are in a worse one at the end."""
        total = self.from_total(bucket)
        worse = sum(n for (f, t), n in self.counts.items() if f == bucket and t > bucket)
        return Decimal(worse) / total if total else Decimal(0)


def roll_rates(*, lender_id: int, start: date, end: date, tz: Any) -> RollRates:
    """Buckets at the end of ``start`` against the end of ``end`` (the lender's dates)."""

    def day_end(d: date) -> datetime:
        return datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=tz)

    rows = _rows(
        ROLL_RATES,
        {"lender": lender_id, "a": start, "b": end, "a_end": day_end(start), "b_end": day_end(end)},
    )
    return RollRates(start=start, end=end, counts={(f, t): n for f, t, n in rows})


def month_ends(*, on: date, count: int) -> list[date]:
    """The last ``count`` month ends before ``on``, oldest first."""
    ends, first = [], on.replace(day=1)
    for _ in range(count):
        end = first - timedelta(days=1)
        ends.append(end)
        first = end.replace(day=1)
    return ends[::-1]


@dataclass(frozen=True, slots=True)
class Cure:
    stage: str
    reached: int
    cured: int

    @property
    def rate(self) -> Decimal:
        return Decimal(self.cured) / self.reached if self.reached else Decimal(0)


def cure_rates(*, lender_id: int, now: datetime) -> list[Cure]:
    found = {
        stage: (reached, cured)
        for stage, reached, cured in _rows(
            CURE_RATES,
            {"lender": lender_id, "window": CURE_WINDOW, "now": now, "order": list(STAGE_ORDER)},
        )
    }
    return [Cure(stage, *found.get(stage, (0, 0))) for stage in STAGE_ORDER[1:]]


@dataclass(frozen=True, slots=True)
class UnlockTimes:
    p50_seconds: float | None
    p95_seconds: float | None
    count: int


def unlock_times(*, lender_id: int) -> UnlockTimes:
    p50, p95, count = _rows(UNLOCK_TIMES, {"lender": lender_id})[0]
    return UnlockTimes(p50_seconds=p50, p95_seconds=p95, count=count)


def dashboard(*, lender: Any, now: datetime) -> dict[str, Any]:
    """Every figure of the dashboard for ``lender`` as of ``now`` (its local date), as chart rows."""
    today = lender_local_date(lender=lender, at=now)
    stages = stage_counts(lender_id=lender.pk)
    at_risk = par(lender_id=lender.pk, on=today)
    ends = month_ends(on=today, count=4)
    rolls = [
        roll_rates(lender_id=lender.pk, start=a, end=b, tz=ZoneInfo(lender.timezone))
        for a, b in pairwise(ends)
    ]
    cures = cure_rates(lender_id=lender.pk, now=now)
    return {
        "lender": lender,
        "today": today,
        "stages": _bars([(s, n) for s, n in stages.items()]),
        "active_loans": sum(stages.values()),
        "par": at_risk,
        "par_bars": _bars([(f"PAR {n}", at_risk.ratio(n)) for n in PAR_DAYS], percent=True),
        "by_shop": par30_by_shop(lender_id=lender.pk, on=today),
        "by_month": par30_by_month_of_sale(lender_id=lender.pk, on=today),
        "rolls": rolls,
        "buckets": list(enumerate(BUCKETS)),
        "roll_last": rolls[-1] if rolls else None,
        "roll_matrix": [
            (name, [(f"{f}-{t}", rolls[-1].counts.get((f, t), 0)) for t in range(len(BUCKETS))])
            for f, name in enumerate(BUCKETS)
        ]
        if rolls
        else [],
        "roll_forward": [
            (
                r.end.strftime("%Y-%m"),
                [
                    f"{r.rolled_forward(b) * 100:.0f}%" if r.from_total(b) else "-"
                    for b in range(len(BUCKETS))
                ],
            )
            for r in rolls
        ],
        "cures": cures,
        "cure_bars": _bars([(c.stage, c.rate) for c in cures], percent=True),
        "unlock": unlock_times(lender_id=lender.pk),
    }


def _bars(items: list[tuple[str, Any]], *, percent: bool = False) -> list[dict[str, Any]]:
    """Rows for an SVG bar chart: label, value, the bar's width in percent of the largest."""
    top = max((v for _, v in items), default=0) or 1
    return [
        {
            "label": label,
            "value": value,
            "width": float(value) * 100 / float(top),
            "text": f"{float(value) * 100:.1f}%" if percent else str(value),
        }
        for label, value in items
    ]
