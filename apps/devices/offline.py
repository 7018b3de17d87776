"""What a phone can verify without a network: OpenPAYGO tokens and support PINs.

Both come from secrets of the phone's own, derived from the one master key in the
environment (as the lenders' signing keys are, ``apps.devices.keys``), so nothing secret is
stored in the database: the token secret of a phone is the first 16 bytes of
HMAC-SHA256(master, "openpaygo:<lender slug>:<device id>"), its PIN secret
HMAC-SHA256(master, "support-pin:<lender slug>:<device id>"). The enroll answer hands them to
the phone once; docs/devices.md gives the scheme the agent implements.

**Tokens** are OpenPAYGO Token's standard 9-digit tokens (the ``openpaygo`` library). A
payment that lowers a loan's stage gives its phone a ``SET_TIME`` token whose value is the
"paid until" date, counted in days from the phone's epoch (the lender's local date of its
enrollment): the due date of the loan's oldest unpaid installment after the payment. The
phone derives its level from that date with the loan's ladder it received at enrollment (the
server's own rule for the stage), and never above the level of its signed state: a token
only lowers. A date rather than a level, because a date stays true as days pass offline (the
phone climbs the ladder again on the days the books would), and because it is what the
scheme's ``SET_TIME`` means. A payoff gives ``DISABLE_PAYG``: the phone releases itself.

**Support PINs** answer a challenge the lock screen shows: the challenge is 6 digits of
HMAC-SHA256(pin secret, "challenge:<counter>"), the PIN 8 digits of
HMAC-SHA256(pin secret, "pin:<challenge>"); the phone accepts the PIN of its current
challenge once, then moves its counter on.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from openpaygo import TokenType, generate_token
from openpaygo.token_shared import OpenPAYGOTokenShared

# the largest value a standard token carries: paid-until dates up to ~32 months after the epoch
MAX_VALUE = OpenPAYGOTokenShared.MAX_ACTIVATION_VALUE


def _derive(label: str, *, lender_slug: str, device_id: int) -> bytes:
    master = settings.DEVICE_SIGNING_MASTER_KEY.encode()
    return hmac.new(master, f"{label}:{lender_slug}:{device_id}".encode(), hashlib.sha256).digest()


def token_secret(*, lender_slug: str, device_id: int) -> str:
    """The phone's OpenPAYGO secret key: 16 bytes, hex (the library's format)."""
    return _derive("openpaygo", lender_slug=lender_slug, device_id=device_id)[:16].hex()


def starting_code(secret: str) -> int:
    """The scheme's starting code for ``secret`` (the library's own derivation)."""
    return int(OpenPAYGOTokenShared.generate_starting_code(bytes.fromhex(secret)))


def pin_secret(*, lender_slug: str, device_id: int) -> str:
    return _derive("support-pin", lender_slug=lender_slug, device_id=device_id).hex()


def _digits(secret: str, message: str, width: int) -> str:
    mac = hmac.new(bytes.fromhex(secret), message.encode(), hashlib.sha256).digest()
    return str(int.from_bytes(mac[:4], "big") % 10**width).zfill(width)


def pin_challenge(secret: str, counter: int) -> str:
    """The 6-digit challenge the lock screen shows at ``counter`` (the phone's computation)."""
    return _digits(secret, f"challenge:{counter}", 6)


def pin_for(secret: str, challenge: str) -> str:
    """The 8-digit PIN that answers ``challenge``."""
    return _digits(secret, f"pin:{challenge}", 8)


def paid_until_value(*, epoch: date, paid_until: date) -> int:
    """A paid-until date as a token value: days from the epoch, within the scheme's range."""
    return min(max((paid_until - epoch).days, 0), MAX_VALUE)


@dataclass(frozen=True, slots=True)
class Token:
    count: int
    digits: str


def token_make(*, secret: str, count: int, kind: str, value: int | None) -> Token:
    """The token after ``count`` (the highest count issued so far) of ``kind``
    (``set_time`` with ``value``, or ``disable_payg``); its own count is in the answer."""
    if kind == "set_time":
        new_count, digits = generate_token(
            secret_key=secret,
            count=count,
            value=value,
            token_type=TokenType.SET_TIME,
            starting_code=starting_code(secret),
        )
    elif kind == "disable_payg":
        new_count, digits = generate_token(
            secret_key=secret,
            count=count,
            token_type=TokenType.DISABLE_PAYG,
            starting_code=starting_code(secret),
        )
    else:
        raise ValueError(f"unknown token kind {kind!r}")
    return Token(count=int(new_count), digits=str(digits))


def token_digits(*, secret: str, count: int, kind: str, value: int | None) -> str:
    """The digits of the token issued at ``count``: the scheme is deterministic, so a token is
    stored as its count and value, and its digits made again when shown or sent."""
    # generate_token returns the token after ``count - 1`` or ``count - 2``: the same count
    # for either, as the count's parity names the kind (odd: set_time, disable_payg)
    return token_make(secret=secret, count=count - 1, kind=kind, value=value).digits


def group(digits: str) -> str:
    """Digits in threes, as a customer reads them out: "123 456 789"."""
    return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))
