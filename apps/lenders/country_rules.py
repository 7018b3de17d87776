"""What a restriction policy may do, per country: the one table, and what is never blocked.

The values in ``COUNTRY_RULES`` are product configuration, not legal advice:
each row must be confirmed with compliance for that market before a lender
there goes live, and changed here (with its test) when the rules change.
A country that is not in the table gets ``DEFAULT_RULE``, which is
deliberately conservative: reminders and wallpaper only, daytime contact.

Contact has a calendar: a window per weekday (Saturday may be shorter, a day
may be closed) and no contact on the country's public holidays (the
``holidays`` package, national holidays only: the lender records a country,
not a region). Every row closes Sundays and public holidays: the law requires
it in Colombia (Ley 2300 de 2023) and Indonesia (SEOJK 19/2023); elsewhere it
is the product's choice, to leave the customer's day of rest alone, and
stricter than the law. ``contact_window`` is the one answer for a local date;
messages (``apps.notifications.rules``) and alarms (``apps.devices.desired_state``)
both ask it, in the customer's local time (the lender's timezone).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, time

import holidays
from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.lenders.models import RestrictionStage

Action = RestrictionStage.Action


Window = tuple[time, time]
SATURDAY, SUNDAY = 5, 6  # date.weekday()


@dataclass(frozen=True, slots=True)
class CountryRule:
    """``earliest_lock_day`` is None exactly when the country forbids ``lock``.

    ``contact_hours`` is the local-time window of a working day, start included
    and end excluded: alarms ring and reminders go out only inside it.
    ``saturday_hours`` is Saturday's window when it differs (None: as a working
    day); ``closed_weekdays`` are days with no contact at all (``date.weekday()``,
    Monday 0); ``closed_on_holidays``: no contact on a national public holiday.
    ``lock_notice_days``: a stage that blocks apps or locks applies only once the
    customer was sent a notice naming it and its date at least this many days
    earlier, through a channel that confirmed it (India's 2026 draft rules on
    device restriction; Kenya's and Mexico's conduct codes).
    """

    allowed_actions: frozenset[Action]
    earliest_lock_day: int | None
    contact_hours: Window
    saturday_hours: Window | None = None
    closed_weekdays: frozenset[int] = frozenset({SUNDAY})
    closed_on_holidays: bool = True
    lock_notice_days: int = 3

    def __post_init__(self) -> None:
        if (Action.LOCK in self.allowed_actions) != (self.earliest_lock_day is not None):
            raise ValueError("earliest_lock_day is set exactly when lock is allowed")
        for start, end in filter(None, (self.contact_hours, self.saturday_hours)):
            if not start < end:
                raise ValueError("contact hours must start before they end, within one day")
        if len(self.closed_weekdays) == 7 or not self.closed_weekdays <= set(range(7)):
            raise ValueError("closed weekdays are some of 0 (Monday) to 6 (Sunday)")
        if self.lock_notice_days < 1:
            raise ValueError("a lock is announced at least a day ahead")

    def weekday_window(self, weekday: int) -> Window | None:
        """The contact window of a ``date.weekday()``, holidays aside; None when closed."""
        if weekday in self.closed_weekdays:
            return None
        if weekday == SATURDAY and self.saturday_hours is not None:
            return self.saturday_hours
        return self.contact_hours


_EVERY_ACTION = frozenset(Action)
_NO_LOCK = _EVERY_ACTION - {Action.LOCK}

# TO CONFIRM WITH COMPLIANCE, market by market (see the module docstring).
COUNTRY_RULES: dict[str, CountryRule] = {
    # SEC MC 18 (2019): no collection contact before 06:00 or after 22:00.
    "PH": CountryRule(_EVERY_ACTION, 30, (time(6), time(22))),
    # CONDUSEF collection rules: contact between 07:00 and 22:00.
    "MX": CountryRule(_EVERY_ACTION, 30, (time(7), time(22))),
    "KE": CountryRule(_EVERY_ACTION, 30, (time(7), time(20))),
    "NG": CountryRule(_EVERY_ACTION, 30, (time(8), time(20))),
    # RBI recovery-agent conduct: calls between 08:00 and 19:00. Device locking
    # is under regulatory review, so no lock until compliance clears it.
    "IN": CountryRule(_NO_LOCK, None, (time(8), time(19))),
    "ID": CountryRule(_EVERY_ACTION, 30, (time(8), time(20))),
    "BR": CountryRule(_EVERY_ACTION, 30, (time(8), time(20))),
    # Ley 2300 de 2023 ("dejen de fregar"), article 3: Monday to Friday 07:00-19:00,
    # Saturday 08:00-15:00, never on Sundays or public holidays.
    "CO": CountryRule(_EVERY_ACTION, 30, (time(7), time(19)), saturday_hours=(time(8), time(15))),
}
# Indonesia's row above: SEOJK 19/2023, Monday to Saturday 08:00-20:00 local time, not on
# national holidays. Every other row closes Sundays and holidays by the product's choice.


DEFAULT_RULE = CountryRule(
    frozenset({Action.REMINDER, Action.WALLPAPER}), None, (time(8), time(20))
)


def country_rule_for(country: str) -> CountryRule:
    """The rule for an ISO 3166-1 alpha-2 country; ``DEFAULT_RULE`` when it has none."""
    return COUNTRY_RULES.get(country, DEFAULT_RULE)


def is_within_contact_hours(*, country: str, local_time: time) -> bool:
    """Whether ``local_time`` (the customer's wall clock) is inside the country's window
    on a working day (``contact_window`` knows the day)."""
    start, end = country_rule_for(country).contact_hours
    return start <= local_time.replace(tzinfo=None) < end


def contact_window(*, country: str, day: date) -> Window | None:
    """The country's contact window on the local date ``day``: None on a closed weekday or
    a public holiday. Tested for each country of the table around a Sunday and a holiday
    (tests/notifications/test_services_calendars.py)."""
    rule = country_rule_for(country)
    if rule.closed_on_holidays and day in public_holidays(country=country, year=day.year):
        return None
    return rule.weekday_window(day.weekday())


@functools.cache
def public_holidays(*, country: str, year: int) -> frozenset[date]:
    """The country's national public holidays in ``year`` (observed days included, as the
    ``holidays`` package lists them); none for a country the package does not know."""
    if country not in holidays.list_supported_countries():
        return frozenset()
    return frozenset(holidays.country_holidays(country, years=year))


# The stages that need a notice first (CountryRule.lock_notice_days).
NOTICE_ACTIONS = frozenset({Action.BLOCK_APPS, Action.LOCK})


# Packages no stage may block: emergency calls and the dialer (which is how the
# customer reaches the lender's support number), and the agent, which also
# carries the payment path (the pay screen and pay links open inside it).
_PHONE_PACKAGES = frozenset(
    {
        "com.android.phone",
        "com.android.server.telecom",
        "com.android.dialer",
        "com.android.incallui",
        "com.android.emergency",
        "com.google.android.dialer",
        "com.samsung.android.dialer",
        "com.samsung.android.incallui",
    }
)


def agent_package_name() -> str:
    return getattr(settings, "AGENT_PACKAGE_NAME", "com.smartcollection.agent")


def always_allowed_packages() -> frozenset[str]:
    """Read at call time, so a settings override reaches it."""
    return _PHONE_PACKAGES | {agent_package_name()}


ALWAYS_ALLOWED_PACKAGES = always_allowed_packages()

# Named categories a block_apps stage may use. They are Android's own
# ApplicationInfo.CATEGORY_* values, which the agent reads on the phone; there
# is deliberately no "messaging": SMS carries payment confirmations and our
# reminders. Values are how the consent page names them.
APP_CATEGORIES: dict[str, Promise] = {
    "social": _("social apps"),
    "video": _("video apps"),
    "games": _("games"),
    "audio": _("music and audio apps"),
    "news": _("news apps"),
}
