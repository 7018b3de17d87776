"""When a customer may be contacted: the one place for quiet hours and weekly limits.

Contact hours come from the country rules (apps/lenders/country_rules.py);
the weekly limit counts every non-transactional message queued for the
customer in the last seven days, whatever its channel.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apps.lenders.country_rules import country_rule_for

# Messages a customer may get in 7 days, per country (TO CONFIRM WITH COMPLIANCE).
WEEKLY_LIMIT: dict[str, int] = {"CO": 2, "IN": 5}
DEFAULT_WEEKLY_LIMIT = 7


def weekly_limit(country: str) -> int:
    return WEEKLY_LIMIT.get(country, DEFAULT_WEEKLY_LIMIT)


def contact_slot(*, country: str, tz: str, at: datetime) -> datetime:
    """The earliest moment at or after ``at`` inside the country's contact hours
    (local to ``tz``), as an aware datetime."""
    start, end = country_rule_for(country).contact_hours
    local = at.astimezone(ZoneInfo(tz))
    if start <= local.time().replace(tzinfo=None) < end:
        return at
    day = (
        local.date()
        if local.time().replace(tzinfo=None) < start
        else local.date() + timedelta(days=1)
    )
    return datetime.combine(day, start, tzinfo=ZoneInfo(tz))
