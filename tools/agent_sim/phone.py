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

STRICTNESS = ("normal", "reminder", "wallpaper", "alarm", "block_apps", "lock")


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
    history: list[tuple[int, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what the customer was shown
    notice_ids: set[int] = field(default_factory=set)

    def apply(self, document: dict[str, Any]) -> None:
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
        self.released = document["level"] == "released"
        self.history.append((self.version, self.level))

    def rings_at(self, moment: datetime) -> bool:
        """Whether an alarm rings at ``moment``: only at a time its state lists for that local
        date. A date it lists empty (a rest day, a public holiday) or leaves out is quiet."""
        if self.released:
            return False
        local = moment.astimezone(ZoneInfo(self.timezone))
        return local.strftime("%H:%M") in self.alarm_days.get(local.date().isoformat(), [])

    def lease_lapse(self, now: datetime) -> bool:
        """Offline past the lease: apply its fallback stage (never harsher than the lease says)."""
        if self.released or self.valid_until is None or now < self.valid_until:
            return False
        if self.level != self.fallback_level:
            self.level = self.fallback_level
            self.history.append((self.version, f"lease:{self.fallback_level}"))
        return True

    def describe(self) -> str:
        if self.released:
            return "released: the agent removed itself"
        extra = f", blocked {','.join(self.blocked_categories)}" if self.blocked_categories else ""
        return f"v{self.version} {self.level}{extra}"
