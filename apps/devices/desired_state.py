"""The desired-state document and its signature.

Documents are built by one SQL statement (``apps.devices.services.state_writer``),
for one phone or a hundred thousand, and stored once, never edited. The
signature is made when the document is handed to the phone: canonical JSON
(sorted keys, no spaces, UTF-8) and Ed25519 over exactly those bytes, with
the key version the document names. The agent verifies it with the lender's
public key it received at enrollment, and refuses a state whose version is
not higher than the one it applied, or whose ``valid_until`` has passed.
A state may announce the lender's next key (``next_key``); the phone trusts
it from the moment it applies that state, which the old key signed.

Alarms ring by the country's calendar (``alarm_days``): every state carries,
for each local date of its lease in the lender's ``timezone`` (the customer's
local time), the alarm times that may ring that day, those inside the
country's contact window of that date. A rest day or a public holiday lists
none (its quiet dates), a Colombian Saturday only those before 15:00, and a
date past the lease is not listed, so the phone rings nothing then. Built
when the state is written (a re-issued state gets its own week), never part
of what a policy sets (``CONTENT_FIELDS``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apps.devices.keys import lender_signing_key
from apps.lenders.country_rules import contact_window

OFFLINE_LEASE = timedelta(days=7)


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


# What a state says besides its bookkeeping: re-issuing a state (to announce a
# new key) carries these over unchanged.
CONTENT_FIELDS = (
    "wallpaper_text",
    "lock_screen_text",
    "blocked_packages",
    "blocked_categories",
    "alarm_times",
    "always_allowed_numbers",
    "fallback_level",
)


def sign_document(*, lender_slug: str, document: dict[str, Any]) -> str:
    key = lender_signing_key(lender_slug=lender_slug, version=document["key_version"])
    return base64.b64encode(key.sign(canonical(document))).decode()


def alarm_days(
    *, alarm_times: Sequence[str], country: str, tz: str, issued_at: datetime
) -> dict[str, list[str]]:
    """For each local date from ``issued_at`` to the end of its lease, the ``alarm_times``
    ("HH:MM", local) that may ring that day: none on a rest day or a public holiday, and
    only those inside a shorter window (tests/devices/test_services_alarm_calendar.py)."""
    if not alarm_times:
        return {}
    zone = ZoneInfo(tz)
    first = issued_at.astimezone(zone).date()
    last = (issued_at + OFFLINE_LEASE).astimezone(zone).date()
    days: dict[str, list[str]] = {}
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        window = contact_window(country=country, day=day)
        days[day.isoformat()] = [
            value
            for value in sorted(alarm_times)
            if window is not None and window[0] <= time.fromisoformat(value) < window[1]
        ]
    return days
