"""The country table's markets for calendar tests: each country's lender timezone and
currency, when contact opens on a working day, and a weekday public holiday of 2026 with
the first local moment after it that is open (checked by hand against each country's
calendar, not computed from the rules under test)."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

MARKETS = {
    "PH": ("Asia/Manila", "PHP", time(6), date(2026, 6, 12), (date(2026, 6, 13), time(6))),
    "MX": ("America/Mexico_City", "MXN", time(7), date(2026, 9, 16), (date(2026, 9, 17), time(7))),
    # Madaraka Day is a Monday: the Sunday before it is closed too
    "KE": ("Africa/Nairobi", "KES", time(7), date(2026, 6, 1), (date(2026, 6, 2), time(7))),
    "NG": ("Africa/Lagos", "NGN", time(8), date(2026, 10, 1), (date(2026, 10, 2), time(8))),
    "IN": ("Asia/Kolkata", "INR", time(8), date(2026, 10, 2), (date(2026, 10, 3), time(8))),
    "ID": ("Asia/Jakarta", "IDR", time(8), date(2026, 8, 17), (date(2026, 8, 18), time(8))),
    "BR": ("America/Sao_Paulo", "BRL", time(8), date(2026, 9, 7), (date(2026, 9, 8), time(8))),
    # the Battle of Boyacá is a Friday: Saturday opens at 08:00, not 07:00
    "CO": ("America/Bogota", "COP", time(7), date(2026, 8, 7), (date(2026, 8, 8), time(8))),
}
SUNDAY, MONDAY = date(2026, 11, 22), date(2026, 11, 23)  # no holiday around them in the table


def local(country: str, on: date, at: time) -> datetime:
    """``on`` at ``at`` on the wall clock of the country's lender."""
    return datetime.combine(on, at, tzinfo=ZoneInfo(MARKETS[country][0]))


def opening(country: str, on: date) -> datetime:
    return local(country, on, MARKETS[country][2])
