"""Which trigger makes customers pay: per trigger (the scheduled reminders and notices, a funds
alert's link to pay, a reminder call answered), the share of the customers it reached who paid
within 24 hours and within 7 days.

A customer counts once per trigger, from the first time it reached them in the window: the
30 days that ended 7 days ago, so that both delays are over for everyone counted. A payment
on any of the customer's loans at the lender counts (``sql.CONVERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection

from apps.collections.sql import CONVERSION

TRIGGERS = ("reminder", "funds", "voice")
WINDOW = timedelta(days=30)
SETTLE = timedelta(days=7)  # the longer delay: a touch younger than this is not counted yet


@dataclass(frozen=True, slots=True)
class Conversion:
    trigger: str
    customers: int
    paid_24h: int
    paid_7d: int

    def share(self, paid: int) -> Decimal:
        return Decimal(paid) / self.customers if self.customers else Decimal(0)

    @property
    def share_24h(self) -> Decimal:
        return self.share(self.paid_24h)

    @property
    def share_7d(self) -> Decimal:
        return self.share(self.paid_7d)


def conversion_by_trigger(*, lender_id: int, now: datetime) -> list[Conversion]:
    """One row per trigger (``TRIGGERS``), zeros for one that reached nobody."""
    until = now - SETTLE
    with connection.cursor() as cursor:
        cursor.execute(CONVERSION, {"lender": lender_id, "since": until - WINDOW, "until": until})
        found = {row[0]: row[1:] for row in cursor.fetchall()}
    return [Conversion(t, *found.get(t, (0, 0, 0))) for t in TRIGGERS]
