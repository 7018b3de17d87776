"""The lock screen without a network: payment tokens, the support PIN, the emergency grace.

The server hands the phone its offline terms once, in the enroll answer
(``OfflineTerms``); from then on the phone decides alone, as a real agent
would with no data and no coverage:

- a payment token (OpenPAYGO Token, 9 digits) is decoded with the phone's own
  secret and counter; SET_TIME moves the "paid until" date, from which the
  phone derives the level with the ladder it holds; DISABLE_PAYG releases it;
  a reused or foreign token is refused, and after 5 refused entries in a local
  day every entry waits for the next day;
- a support PIN, read out by an agent of the lender, answers the 6-digit
  challenge shown on the lock screen once and lifts the restrictions for a
  few hours;
- the emergency grace lets the customer lift a lock by themselves, once per
  restriction episode and at most once in 30 days, down to blocked apps.

Every one of them queues a report the agent posts at its next check-in.
``LockScreen`` is the bookkeeping and its rules; ``Phone`` combines it with
the applied state into the level in force. Nothing here imports the server.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpaygo import TokenType, decode_token

# mildest first; every level the signed state can name, except "released"
STRICTNESS = ("normal", "reminder", "wallpaper", "alarm", "block_apps", "lock")
RELEASED = "released"

# refused entries (tokens or PINs) allowed in one local day; the next one waits
MAX_WRONG_ENTRIES = 5
# the emergency grace opens at most once in this long, whatever the episodes
GRACE_INTERVAL = timedelta(days=30)
# while the grace is open the phone is at most here: maps and mobile money, no lock
GRACE_LEVEL = "block_apps"
# what a state that predates the keys says
DEFAULT_SUPPORT_PIN_HOURS = 24
# the decoder accepts an unused ADD_TIME token this far behind its counter
OLDER_TOKENS = 16

TOKEN = re.compile(r"[0-9]{9}")
SEPARATORS = re.compile(r"[\s-]")
TOKEN_KINDS = {
    TokenType.ADD_TIME: "add_time",
    TokenType.SET_TIME: "set_time",
    TokenType.DISABLE_PAYG: "disable_payg",
}


def mildest(*levels: str) -> str:
    return min(levels, key=STRICTNESS.index)


def pin_challenge(pin_secret: str, counter: int) -> str:
    """The 6 digits the lock screen shows for PIN counter ``counter``."""
    digest = hmac.new(bytes.fromhex(pin_secret), b"challenge:%d" % counter, hashlib.sha256)
    return f"{int.from_bytes(digest.digest()[:4], 'big') % 10**6:06d}"


def support_pin(pin_secret: str, challenge: str) -> str:
    """The 8-digit PIN that answers ``challenge`` (the back office computes the same)."""
    digest = hmac.new(bytes.fromhex(pin_secret), b"pin:" + challenge.encode(), hashlib.sha256)
    return f"{int.from_bytes(digest.digest()[:4], 'big') % 10**8:08d}"


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True)
class OfflineTerms:
    """The enroll answer's ``offline`` block: what the server hands the phone once."""

    token_secret: str  # 32 hex characters, the OpenPAYGO secret key
    starting_code: int
    epoch: date  # a token's value counts days from this lender-local date
    grace_days: int
    ladder: tuple[tuple[int, str], ...]  # (days overdue from, level), mildest first
    timezone: str  # the lender's: "local date" means in it
    pin_secret: str  # 64 hex characters

    @classmethod
    def from_json(cls, block: dict[str, Any]) -> OfflineTerms:
        return cls(
            token_secret=block["token_secret"],
            starting_code=int(block["starting_code"]),
            epoch=date.fromisoformat(block["epoch"]),
            grace_days=int(block["grace_days"]),
            ladder=tuple((int(days), str(level)) for days, level in block["ladder"]),
            timezone=block["timezone"],
            pin_secret=block["pin_secret"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "token_secret": self.token_secret,
            "starting_code": self.starting_code,
            "epoch": self.epoch.isoformat(),
            "grace_days": self.grace_days,
            "ladder": [[days, level] for days, level in self.ladder],
            "timezone": self.timezone,
            "pin_secret": self.pin_secret,
        }

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(self.timezone)).date()

    def level_paid_until(self, paid_until: date, on: date) -> str:
        """The level a loan paid until ``paid_until`` is at on local date ``on``: the server's
        stage rule for a loan whose oldest unpaid installment is due then."""
        late = (on - paid_until).days
        days = late if late > self.grace_days else 0
        level = "normal"
        if days > 0:
            for since, step in self.ladder:
                if days >= since:
                    level = step
        return level


@dataclass
class TokenOverride:
    """The last token applied: the loan is paid until ``paid_until``. A state whose
    ``token_count`` reaches ``count`` is at least as new, and drops it."""

    count: int
    paid_until: date


@dataclass
class LockScreen:
    """The phone's offline bookkeeping. Every method takes the moment it happens at."""

    terms: OfflineTerms
    last_count: int = 0  # the decoder's counter
    # Count 0 is the starting code itself, never a token. Keeping it here also keeps the
    # list non-empty, which the decoder needs: it returns None instead of the updated
    # list when handed an empty one, and fails on None for a token behind the counter.
    used_counts: list[int] = field(default_factory=lambda: [0])
    override: TokenOverride | None = None
    released: bool = False  # a DISABLE_PAYG token was applied: for good
    wrong_day: str = ""  # the local date wrong_count counts
    wrong_count: int = 0
    pin_counter: int = 0
    pin_until: datetime | None = None
    grace_until: datetime | None = None
    grace_started: datetime | None = None  # when the last grace opened
    # Restriction episodes: +1 each time the applied level becomes lock from below it.
    episode: int = 0
    grace_episode: int | None = None  # the episode in which the grace last opened
    reports: list[dict[str, Any]] = field(default_factory=list)  # events to post

    # --- what is in force -----------------------------------------------------------------

    def cap(self, level: str, now: datetime, *, grace: bool = True) -> str:
        """``level`` (the applied state's) lowered by the token, a PIN window and the grace."""
        if level not in STRICTNESS:
            return level
        levels = [level]
        if self.override is not None:
            on = self.terms.local_date(now)
            levels.append(self.terms.level_paid_until(self.override.paid_until, on))
        if self.pin_until is not None and now < self.pin_until:
            levels.append("normal")
        if grace and self.grace_until is not None and now < self.grace_until:
            levels.append(GRACE_LEVEL)
        return mildest(*levels)

    def challenge(self) -> str:
        return pin_challenge(self.terms.pin_secret, self.pin_counter)

    # --- what the customer types ------------------------------------------------------------

    def type_token(self, digits: str, now: datetime) -> str | None:
        """Decode and apply a token: None when applied, else why it was refused
        (``used``, ``invalid``, or ``wait`` after 5 refused entries today)."""
        if self._waits(now):
            return "wait"
        token = SEPARATORS.sub("", digits)
        if not TOKEN.fullmatch(token):
            return self._wrong("invalid")
        value, kind, count, used = decode_token(
            token=token,
            secret_key=self.terms.token_secret,
            count=self.last_count,
            used_counts=list(self.used_counts),
            starting_code=self.terms.starting_code,
        )
        if kind == TokenType.ALREADY_USED:
            return self._wrong("used")
        if kind not in TOKEN_KINDS:  # INVALID, and COUNTER_SYNC, which this phone does not use
            return self._wrong("invalid")
        self.last_count = max(self.last_count, count)
        self.used_counts = list(used) if used else [count]
        days: int | None = None
        if kind == TokenType.DISABLE_PAYG:
            self.released = True
        elif kind == TokenType.SET_TIME:
            days = int(value)  # the decoder divides by its value divider: a float
            self.override = TokenOverride(count, self.terms.epoch + timedelta(days=days))
        else:
            # ADD_TIME (the server sends SET_TIME): more days on the date paid until, or on
            # today's when no token is in force
            days, held = int(value), self.override
            if held is None:
                self.override = TokenOverride(
                    count, self.terms.local_date(now) + timedelta(days=days)
                )
            else:
                paid_until = held.paid_until + timedelta(days=days)
                self.override = TokenOverride(max(count, held.count), paid_until)
        self._queue(
            "offline_token_applied",
            now,
            count=count,
            type=TOKEN_KINDS[kind],
            value=days,
            applied_at=now.isoformat(),
        )
        return None

    def enter_pin(self, pin: str, now: datetime, *, hours: int) -> str | None:
        """Check a support PIN against the current challenge: None when it opened a window of
        ``hours`` (and the challenge moved on), else ``invalid`` or ``wait``."""
        if self._waits(now):
            return "wait"
        challenge = self.challenge()
        typed = SEPARATORS.sub("", pin)
        if not hmac.compare_digest(
            typed.encode(), support_pin(self.terms.pin_secret, challenge).encode()
        ):
            return self._wrong("invalid")
        self.pin_counter += 1
        self.pin_until = now + timedelta(hours=hours)
        self._queue("support_pin_used", now, challenge=challenge, applied_at=now.isoformat())
        return None

    def emergency_unlock(self, level: str, now: datetime, *, hours: int) -> bool:
        """Open the emergency grace for ``hours``, if ``level`` (in force but for a grace) is a
        lock, the lender allows it, and neither this episode nor the last 30 days used it."""
        if level != "lock" or hours <= 0 or self.grace_episode == self.episode:
            return False
        if self.grace_started is not None and now - self.grace_started <= GRACE_INTERVAL:
            return False
        self.grace_started, self.grace_until = now, now + timedelta(hours=hours)
        self.grace_episode = self.episode
        self._queue(
            "emergency_grace_used",
            now,
            started_at=now.isoformat(),
            ends_at=self.grace_until.isoformat(),
        )
        return True

    # --- what the phone learns from its state -----------------------------------------------

    def state_applied(self, *, token_count: int) -> None:
        """A signed state written when the server had issued ``token_count`` tokens: every
        token up to it is spent, and the override it covers gives way to the state."""
        if token_count > self.last_count:
            self.last_count = token_count
            spent = range(max(0, token_count - OLDER_TOKENS), token_count + 1)
            self.used_counts = sorted(
                {c for c in self.used_counts if c > token_count - OLDER_TOKENS} | set(spent)
            )
        if self.override is not None and token_count >= self.override.count:
            self.override = None

    def level_changed(self, was: str, level: str) -> None:
        """The applied level moved (a state, or the lease's fallback): a lock reached from
        below it starts a new restriction episode."""
        if level == "lock" and was != "lock":
            self.episode += 1

    # --- internals ------------------------------------------------------------------------

    def _waits(self, now: datetime) -> bool:
        today = self.terms.local_date(now).isoformat()
        if self.wrong_day != today:
            self.wrong_day, self.wrong_count = today, 0
        return self.wrong_count >= MAX_WRONG_ENTRIES

    def _wrong(self, reason: str) -> str:
        self.wrong_count += 1
        return reason

    def _queue(self, kind: str, now: datetime, **detail: Any) -> None:
        self.reports.append(
            {
                "event_id": uuid.uuid4().hex,
                "kind": kind,
                "occurred_at": now.isoformat(),
                "detail": detail,
            }
        )

    # --- what survives a restart ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        held = self.override
        return {
            "terms": self.terms.to_json(),
            "last_count": self.last_count,
            "used_counts": self.used_counts,
            "override": None
            if held is None
            else {"count": held.count, "paid_until": held.paid_until.isoformat()},
            "released": self.released,
            "wrong_day": self.wrong_day,
            "wrong_count": self.wrong_count,
            "pin_counter": self.pin_counter,
            "pin_until": _iso(self.pin_until),
            "grace_until": _iso(self.grace_until),
            "grace_started": _iso(self.grace_started),
            "episode": self.episode,
            "grace_episode": self.grace_episode,
            "reports": self.reports,
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> LockScreen:
        held = saved["override"]
        return cls(
            terms=OfflineTerms.from_json(saved["terms"]),
            last_count=saved["last_count"],
            used_counts=saved["used_counts"],
            override=None
            if held is None
            else TokenOverride(held["count"], date.fromisoformat(held["paid_until"])),
            released=saved["released"],
            wrong_day=saved["wrong_day"],
            wrong_count=saved["wrong_count"],
            pin_counter=saved["pin_counter"],
            pin_until=_moment(saved["pin_until"]),
            grace_until=_moment(saved["grace_until"]),
            grace_started=_moment(saved["grace_started"]),
            episode=saved["episode"],
            grace_episode=saved["grace_episode"],
            reports=saved["reports"],
        )
