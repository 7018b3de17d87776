"""When a customer may be contacted: the one place for quiet hours and weekly limits.

Contact windows come from the country rules (apps/lenders/country_rules.py):
a window per weekday (Colombia's Saturday is shorter), closed days (Sundays)
and public holidays, all in the customer's local time (the lender's
timezone). A message that falls in a closed window waits for the next open
one; it is never dropped for it. The weekly limit counts every
non-transactional message queued for the customer in the last seven days,
whatever its channel.

Exempt from both, because the customer is waiting for them now:
``Notification.TRANSACTIONAL`` (the payment receipt), and the codes the
customer asks for (the self-service login code, the counter's consent code),
which ``apps.customers`` sends itself and never queues here. Every other
message (due-date reminders, overdue notices, a reminder an agent sends
again, and any kind added later unless it is made transactional) waits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apps.lenders.country_rules import contact_window

# Messages a customer may get in 7 days, per country (TO CONFIRM WITH COMPLIANCE).
WEEKLY_LIMIT: dict[str, int] = {"CO": 2, "IN": 5}
DEFAULT_WEEKLY_LIMIT = 7


def weekly_limit(country: str) -> int:
    return WEEKLY_LIMIT.get(country, DEFAULT_WEEKLY_LIMIT)


# Every country's calendar opens at least one day a week, so the next window is near; a
# long run of holidays (Holy Week, Eid) is a few days.
_LOOKAHEAD_DAYS = 31


def contact_slot(*, country: str, tz: str, at: datetime) -> datetime:
    """The earliest moment at or after ``at`` inside the country's contact windows (local
    to ``tz``), as an aware datetime: ``at`` itself when it is inside one."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    for offset in range(_LOOKAHEAD_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        window = contact_window(country=country, day=day)
        if window is None:
            continue
        opens, closes = (datetime.combine(day, edge, tzinfo=zone) for edge in window)
        if local < opens:
            return opens
        if local < closes:
            return at
    raise ValueError(f"no contact window in {country} within {_LOOKAHEAD_DAYS} days of {at}")
