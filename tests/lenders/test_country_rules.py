"""The country table: contact hours, allowed actions and earliest lock days, consistent with
themselves; the packages no stage may block."""

from datetime import time

import pytest

from apps.lenders.country_rules import (
    ALWAYS_ALLOWED_PACKAGES,
    COUNTRY_RULES,
    DEFAULT_RULE,
    CountryRule,
    is_within_contact_hours,
)
from apps.lenders.models import RestrictionStage

pytestmark = pytest.mark.django_db


Action = RestrictionStage.Action


def test_always_allowed_set_holds_emergency_dialer_and_agent_packages() -> None:
    assert {
        "com.android.phone",
        "com.android.dialer",
        "com.google.android.dialer",
        "com.android.emergency",
        "com.smartcollection.agent",
    } <= ALWAYS_ALLOWED_PACKAGES


@pytest.mark.parametrize(
    ("country", "local_time", "expected"),
    [
        ("PH", time(6, 0), True),
        ("PH", time(5, 59), False),
        ("PH", time(21, 59), True),
        ("PH", time(22, 0), False),
        ("MX", time(6, 30), False),
        ("MX", time(7, 0), True),
        ("MX", time(21, 59, 59), True),
        ("MX", time(22, 0), False),
        ("FR", time(7, 59), False),  # DEFAULT_RULE: 08:00-20:00
        ("FR", time(8, 0), True),
    ],
)
def test_contact_hours_include_the_start_and_exclude_the_end_when_checked(
    country, local_time, expected
) -> None:
    assert is_within_contact_hours(country=country, local_time=local_time) is expected


def test_country_table_is_consistent_when_loaded() -> None:
    assert {"PH", "MX", "KE", "NG", "IN", "ID", "BR", "CO"} <= COUNTRY_RULES.keys()
    assert COUNTRY_RULES["PH"].contact_hours == (time(6), time(22))
    assert COUNTRY_RULES["MX"].contact_hours == (time(7), time(22))
    assert [c for c, rule in COUNTRY_RULES.items() if Action.LOCK not in rule.allowed_actions]
    assert Action.LOCK not in DEFAULT_RULE.allowed_actions


@pytest.mark.parametrize(
    "kwargs",
    [
        {
            "allowed_actions": frozenset(Action),
            "earliest_lock_day": None,
            "contact_hours": (time(8), time(20)),
        },
        {
            "allowed_actions": frozenset({Action.REMINDER}),
            "earliest_lock_day": 30,
            "contact_hours": (time(8), time(20)),
        },
        {
            "allowed_actions": frozenset({Action.REMINDER}),
            "earliest_lock_day": None,
            "contact_hours": (time(20), time(8)),
        },
    ],
)
def test_country_rule_is_refused_when_it_contradicts_itself(kwargs) -> None:
    with pytest.raises(ValueError, match=r"lock|contact hours"):
        CountryRule(**kwargs)
