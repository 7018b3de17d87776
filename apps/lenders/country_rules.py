"""What a restriction policy may do, per country: the one table, and what is never blocked.

The values in ``COUNTRY_RULES`` are product configuration, not legal advice:
each row must be confirmed with compliance for that market before a lender
there goes live, and changed here (with its test) when the rules change.
A country that is not in the table gets ``DEFAULT_RULE``, which is
deliberately conservative: reminders and wallpaper only, daytime contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from apps.lenders.models import RestrictionStage

Action = RestrictionStage.Action


@dataclass(frozen=True, slots=True)
class CountryRule:
    """``earliest_lock_day`` is None exactly when the country forbids ``lock``.

    ``contact_hours`` is a local-time window, start included and end excluded:
    alarms ring and reminders go out only inside it.
    """

    allowed_actions: frozenset[Action]
    earliest_lock_day: int | None
    contact_hours: tuple[time, time]

    def __post_init__(self) -> None:
        if (Action.LOCK in self.allowed_actions) != (self.earliest_lock_day is not None):
            raise ValueError("earliest_lock_day is set exactly when lock is allowed")
        start, end = self.contact_hours
        if not start < end:
            raise ValueError("contact hours must start before they end, within one day")


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
    # Ley 2300 de 2023 ("dejen de fregar"): weekdays 07:00-19:00 (its shorter
    # Saturday window and no-Sunday rule are for the notification scheduler).
    "CO": CountryRule(_EVERY_ACTION, 30, (time(7), time(19))),
}

DEFAULT_RULE = CountryRule(
    frozenset({Action.REMINDER, Action.WALLPAPER}), None, (time(8), time(20))
)


def country_rule_for(country: str) -> CountryRule:
    """The rule for an ISO 3166-1 alpha-2 country; ``DEFAULT_RULE`` when it has none."""
    return COUNTRY_RULES.get(country, DEFAULT_RULE)


def is_within_contact_hours(*, country: str, local_time: time) -> bool:
    """Whether ``local_time`` (the customer's wall clock) is inside the country's window."""
    start, end = country_rule_for(country).contact_hours
    return start <= local_time.replace(tzinfo=None) < end


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
