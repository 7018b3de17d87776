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

import csv
import io
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
    key: str  # what the loan list filters on: the shop's id ("" for none), or YYYY-MM

    @property
    def ratio(self) -> Decimal:
        return self.at_risk / self.gross if self.gross else Decimal(0)

    @property
    def percent(self) -> str:
        return f"{self.ratio * 100:.1f}%"

    @property
    def month_after(self) -> str:
        """For a row by month of sale (``key`` YYYY-MM): the first day of the next month."""
        year, month = map(int, self.key.split("-"))
        return date(year + month // 12, month % 12 + 1, 1).isoformat()


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


def month_ends_between(*, start: date, end: date) -> list[date]:
    """The month ends from ``start`` to ``end`` (both included), oldest first."""
    ends, first = [], (end + timedelta(days=1)).replace(day=1)
    while (last := first - timedelta(days=1)) >= start:
        ends.append(last)
        first = last.replace(day=1)
    return ends[::-1]


def dashboard(
    *, lender: Any, now: datetime, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Every figure of the dashboard for ``lender`` as chart rows: as of ``end`` (the lender's
    date, today at most and by default), with the roll rates of the month ends from ``start``
    (by default, the last four) and the cure rates of the raises up to ``end``. Loans by
    stage are today's: a stage has no history to read back."""
    today = lender_local_date(lender=lender, at=now)
    end = min(end or today, today)
    zone = ZoneInfo(lender.timezone)
    if end < today:
        now = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    ends = (
        month_ends_between(start=start, end=end)
        if start is not None
        else month_ends(on=end + timedelta(days=1), count=4)
    )
    start = start or (ends[0] if ends else end)
    stages = stage_counts(lender_id=lender.pk)
    active = sum(stages.values())
    at_risk = par(lender_id=lender.pk, on=end)
    rolls = [roll_rates(lender_id=lender.pk, start=a, end=b, tz=zone) for a, b in pairwise(ends)]
    cures = cure_rates(lender_id=lender.pk, now=now)
    return {
        "lender": lender,
        "today": end,
        "start": start,
        "end": end,
        "stages": _bars([(s, n) for s, n in stages.items()], total=active),
        "active_loans": active,
        "par": at_risk,
        "par_bars": [
            {**bar, "days": n}
            for n, bar in zip(
                PAR_DAYS,
                _bars([(f"PAR {n}", at_risk.ratio(n)) for n in PAR_DAYS], percent=True),
                strict=True,
            )
        ],
        "by_shop": par30_by_shop(lender_id=lender.pk, on=end),
        "by_month": par30_by_month_of_sale(lender_id=lender.pk, on=end),
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


def _bars(
    items: list[tuple[str, Any]], *, percent: bool = False, total: int = 0
) -> list[dict[str, Any]]:
    """Rows for an SVG bar chart on a 0-100% scale: label, value, the bar's width in percent
    (a ratio's own percentage, or a count's share of ``total``), and the text shown."""

    def width(value: Any) -> float:
        share = float(value) * 100 if percent else (value * 100 / total if total else 0.0)
        return max(0.0, min(100.0, share))

    return [
        {
            "label": label,
            "value": value,
            "width": width(value),
            "text": f"{float(value) * 100:.1f}%" if percent else str(value),
        }
        for label, value in items
    ]


CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell for a CSV file a spreadsheet will open: text that a spreadsheet would take for a
    formula (starting with = + - @, a tab or a carriage return) gets a leading apostrophe, so
    it stays text; numbers are written as they are."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS):
        return "'" + value
    return value


def dashboard_tables(figures: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Each table of the dashboard (``dashboard``'s figures) as a header and rows, by the
    name its CSV export is asked for with."""
    currency = figures["lender"].currency
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {
        "stages": (
            ["stage", "active loans"],
            [[b["label"], b["value"]] for b in figures["stages"]],
        ),
        "par": (
            ["days late more than", "at risk", "gross", "ratio", "currency"],
            [
                [
                    n,
                    figures["par"].at_risk[n],
                    figures["par"].gross,
                    figures["par"].ratio(n),
                    currency,
                ]
                for n in PAR_DAYS
            ],
        ),
        "cures": (
            ["stage", "raised", "cured within 7 days", "rate"],
            [[c.stage, c.reached, c.cured, c.rate] for c in figures["cures"]],
        ),
        "rolls": (
            ["month end", *BUCKETS],
            [[month, *cells] for month, cells in figures["roll_forward"]],
        ),
    }
    for name in ("by_shop", "by_month"):
        tables[name] = (
            [
                "shop" if name == "by_shop" else "sold in",
                "loans",
                "gross",
                "more than 30 days late",
                "PAR 30",
                "currency",
            ],
            [
                [r.label if r.key else "(no shop)", r.loans, r.gross, r.at_risk, r.ratio, currency]
                for r in figures[name]
            ],
        )
    return tables


def table_csv(header: list[str], rows: list[list[Any]]) -> str:
    """The table as CSV text, every cell through ``csv_cell``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(cell) for cell in header])
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return out.getvalue()
