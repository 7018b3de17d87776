"""The simulated phone and the agent's check of a desired state before applying it."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tools.agent_sim.offline import (
    DEFAULT_SUPPORT_PIN_HOURS,
    RELEASED,
    STRICTNESS,
    LockScreen,
)

__all__ = ["STRICTNESS", "Phone", "Refused", "StateVerifier", "canonical", "public_key"]


class Refused(Exception):
    """A desired state the agent will not apply; ``reason`` is the code it acks with."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes the lender signed: sorted keys, no spaces, UTF-8 (the API's contract)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


@dataclass
class StateVerifier:
    """What the agent trusts: its device id and the lender's keys by version.

    A state announcing the lender's next key adds it; once a state signed
    with a newer key arrives, the older keys are dropped for good.
    """

    device_id: int
    keys: dict[int, Ed25519PublicKey]

    @property
    def key_version(self) -> int:
        return max(self.keys)

    def check(self, state: Any, *, applied_version: int, now: datetime) -> dict[str, Any]:
        """The state's document if it may be applied, else ``Refused`` with the reason.

        The signature is checked before anything the document says is used."""
        if not isinstance(state, dict) or not state.get("signature") or "document" not in state:
            raise Refused("unsigned")
        key = self.keys.get(state.get("key_version"))  # type: ignore[arg-type]  # unchecked: a missing key refuses below
        if key is None:
            raise Refused("unknown_key")
        document = state["document"]
        try:
            key.verify(base64.b64decode(state["signature"]), canonical(document))
        except (InvalidSignature, binascii.Error, ValueError, TypeError) as exc:
            raise Refused("bad_signature") from exc
        if document.get("key_version") != state["key_version"]:
            raise Refused("bad_signature")
        if document.get("device") != self.device_id:
            raise Refused("wrong_device")
        if document["version"] <= applied_version:
            raise Refused("replayed")
        if datetime.fromisoformat(document["valid_until"]) <= now:
            raise Refused("expired")
        return document

    def trust(self, document: dict[str, Any]) -> None:
        """After applying a state: drop keys older than its own, add the one it announces."""
        for version in [v for v in self.keys if v < document["key_version"]]:
            del self.keys[version]
        announced = document.get("next_key")
        if announced and announced["version"] not in self.keys:
            self.keys[announced["version"]] = public_key(announced["public_key"])


# The content each level adds, by the mildest level that shows it: a phone lowered below
# one of these (a token, a PIN, the grace) leaves that content off.
CONTENT_FROM = {
    "wallpaper_text": "wallpaper",
    "alarm_times": "alarm",
    "blocked_packages": "block_apps",
    "blocked_categories": "block_apps",
    "lock_screen_text": "lock",
}
# what a save keeps of the phone, besides the offline bookkeeping
KEPT = (
    "version",
    "level",
    "wallpaper_text",
    "lock_screen_text",
    "blocked_packages",
    "blocked_categories",
    "alarm_times",
    "alarm_days",
    "timezone",
    "always_allowed_packages",
    "fallback_level",
    "released",
    "token_count",
    "emergency_grace_hours",
    "support_pin_hours",
)


@dataclass
class Phone:
    """What the device-owner agent controls, in memory."""

    version: int = 0
    level: str = "normal"
    wallpaper_text: str = ""
    lock_screen_text: str = ""
    blocked_packages: list[str] = field(default_factory=list)
    blocked_categories: list[str] = field(default_factory=list)
    alarm_times: list[str] = field(default_factory=list)
    # local date -> the alarm times that may ring that day (its state's ``alarm_days``)
    alarm_days: dict[str, list[str]] = field(default_factory=dict)
    timezone: str = "UTC"  # the customer's local time, in which those dates and times are
    always_allowed_packages: list[str] = field(default_factory=list)
    valid_until: datetime | None = None
    fallback_level: str = "normal"
    released: bool = False
    # from the state: tokens the server had issued, and the lender's grace and PIN lengths
    token_count: int = 0
    emergency_grace_hours: int = 0
    support_pin_hours: int = DEFAULT_SUPPORT_PIN_HOURS
    # the lock screen's offline unlock; None when the server handed no offline terms
    offline: LockScreen | None = None
    history: list[tuple[int, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what the customer was shown
    notice_ids: set[int] = field(default_factory=set)

    def apply(self, document: dict[str, Any]) -> None:
        was = self.level
        self.version, self.level = document["version"], document["level"]
        for name in (
            "wallpaper_text",
            "lock_screen_text",
            "blocked_packages",
            "blocked_categories",
            "alarm_times",
            "always_allowed_packages",
        ):
            setattr(self, name, document.get(name, getattr(self, name)))
        # the calendar is the state's own: one without it rings nothing
        self.alarm_days = document.get("alarm_days", {})
        self.timezone = document.get("timezone", "UTC")
        self.valid_until = datetime.fromisoformat(document["valid_until"])
        self.fallback_level = document.get("fallback_level", "normal")
        self.released = document["level"] == RELEASED
        # a state that predates offline unlock: no token, no grace, the default PIN window
        self.token_count = document.get("token_count", 0)
        self.emergency_grace_hours = document.get("emergency_grace_hours", 0)
        self.support_pin_hours = document.get("support_pin_hours", DEFAULT_SUPPORT_PIN_HOURS)
        if self.offline is not None:
            self.offline.state_applied(token_count=self.token_count)
            self.offline.level_changed(was, self.level)
        self.history.append((self.version, self.level))

    # --- the level in force -------------------------------------------------------------

    def base_level(self, now: datetime) -> str:
        """The applied state's level, or its fallback once its lease has ended."""
        if self.valid_until is not None and now >= self.valid_until:
            return self.fallback_level
        return self.level

    def effective_level(self, now: datetime) -> str:
        """The level in force at ``now``: the state's, lowered by the lock screen (a token,
        a support PIN, the emergency grace); ``released`` beats everything."""
        if self.released or (self.offline is not None and self.offline.released):
            return RELEASED
        base = self.base_level(now)
        return base if self.offline is None else self.offline.cap(base, now)

    def shows(self, level: str, now: datetime) -> bool:
        """Whether the content of ``level`` (its wallpaper, alarms, blocked apps, lock screen)
        is applied at ``now``. As the state says, unless the lock screen lowered the phone:
        then only up to the level in force (lowering never adds a restriction)."""
        effective = self.effective_level(now)
        if effective == RELEASED:
            return False
        if effective == self.base_level(now):
            return True
        return STRICTNESS.index(effective) >= STRICTNESS.index(level)

    def in_force(self, now: datetime) -> dict[str, Any]:
        """The level in force at ``now`` and the content the phone applies with it."""
        return {"level": self.effective_level(now)} | {
            name: getattr(self, name) if self.shows(level, now) else type(getattr(self, name))()
            for name, level in CONTENT_FROM.items()
        }

    def rings_at(self, moment: datetime) -> bool:
        """Whether an alarm rings at ``moment``: only at a time its state lists for that local
        date. A date it lists empty (a rest day, a public holiday) or leaves out is quiet, and
        so is a phone the lock screen lowered below the alarm stage."""
        if self.released or not self.shows("alarm", moment):
            return False
        local = moment.astimezone(ZoneInfo(self.timezone))
        return local.strftime("%H:%M") in self.alarm_days.get(local.date().isoformat(), [])

    def lease_lapse(self, now: datetime) -> bool:
        """Offline past the lease: apply its fallback stage (never harsher than the lease says)."""
        if self.released or self.valid_until is None or now < self.valid_until:
            return False
        if self.level != self.fallback_level:
            was, self.level = self.level, self.fallback_level
            if self.offline is not None:
                self.offline.level_changed(was, self.level)
            self.history.append((self.version, f"lease:{self.fallback_level}"))
        return True

    # --- the lock screen ----------------------------------------------------------------

    def type_token(self, digits: str, now: datetime) -> str:
        """The customer types a payment token: the level in force after it, or
        ``refused:used|invalid|wait`` (``refused:unavailable`` with no offline terms)."""
        if self.offline is None:
            return "refused:unavailable"
        refused = self.offline.type_token(digits, now)
        return f"refused:{refused}" if refused else self.effective_level(now)

    def enter_pin(self, pin: str, now: datetime) -> str:
        """An agent's support PIN for the challenge shown: the level in force after it, or
        ``refused:invalid|wait`` (``refused:unavailable`` with no offline terms)."""
        if self.offline is None:
            return "refused:unavailable"
        refused = self.offline.enter_pin(pin, now, hours=self.support_pin_hours)
        return f"refused:{refused}" if refused else self.effective_level(now)

    def lock_screen_challenge(self) -> str | None:
        """The 6 digits the lock screen shows for the support PIN (None: no offline terms)."""
        return None if self.offline is None else self.offline.challenge()

    def emergency_unlock(self, now: datetime) -> bool:
        """The customer opens the emergency grace: whether it opened."""
        if self.offline is None or self.effective_level(now) == RELEASED:
            return False
        self.lease_lapse(now)  # a lock the lease fell back to starts its episode first
        level = self.offline.cap(self.base_level(now), now, grace=False)
        return self.offline.emergency_unlock(level, now, hours=self.emergency_grace_hours)

    def describe(self, now: datetime | None = None) -> str:
        if self.released:
            return "released: the agent removed itself"
        extra = f", blocked {','.join(self.blocked_categories)}" if self.blocked_categories else ""
        described = f"v{self.version} {self.level}{extra}"
        if now is None:
            return described
        effective = self.effective_level(now)
        if effective == RELEASED:
            return f"{described}, released offline: waiting for the server to confirm"
        if effective != self.level:
            return f"{described}, in force {effective}{self._why(now)}"
        return described

    def _why(self, now: datetime) -> str:
        reasons = ["the lease ended"] if self.base_level(now) != self.level else []
        screen = self.offline
        if screen is not None and screen.override is not None:
            reasons.append(f"token: paid until {screen.override.paid_until.isoformat()}")
        if screen is not None and screen.pin_until is not None and now < screen.pin_until:
            reasons.append(f"support PIN until {screen.pin_until.isoformat()}")
        if screen is not None and screen.grace_until is not None and now < screen.grace_until:
            reasons.append(f"emergency grace until {screen.grace_until.isoformat()}")
        return f" ({'; '.join(reasons)})" if reasons else ""

    # --- what survives a restart --------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        saved = {name: getattr(self, name) for name in KEPT}
        saved["valid_until"] = None if self.valid_until is None else self.valid_until.isoformat()
        saved["notice_ids"] = sorted(self.notice_ids)
        saved["offline"] = None if self.offline is None else self.offline.to_json()
        return saved

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Phone:
        phone = cls(**{name: saved[name] for name in KEPT if name in saved})
        if saved.get("valid_until"):
            phone.valid_until = datetime.fromisoformat(saved["valid_until"])
        phone.notice_ids = set(saved.get("notice_ids", []))
        if saved.get("offline") is not None:
            phone.offline = LockScreen.from_json(saved["offline"])
        return phone
