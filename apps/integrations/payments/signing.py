"""Payment-provider webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>``.

The header is ``X-Signature: t=<unix seconds>,v1=<hex digest>``. Each lender
has its own secret per provider, derived from one master key in the
environment, so no secret is stored in the database and rotating the master
key rotates them all. ``sign`` plays the provider in tests, the benchmark and
the demo; ``verify`` guards the webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

SIGNATURE_HEADER = "X-Signature"
LENDER_HEADER = "X-Lender"


class SignatureInvalid(Exception):
    pass


class TimestampStale(Exception):
    pass


def webhook_secret_for(*, lender_slug: str, provider: str) -> bytes:
    master = settings.PAYMENTS_WEBHOOK_MASTER_KEY.encode()
    return hmac.new(master, f"webhook:{provider}:{lender_slug}".encode(), hashlib.sha256).digest()


def path_token_for(*, lender_slug: str, provider: str) -> str:
    """The secret token in the path of a provider's callbacks to ``lender_slug`` where the
    provider signs nothing (Daraja): derived like the webhook secrets, so none is stored."""
    master = settings.PAYMENTS_WEBHOOK_MASTER_KEY.encode()
    digest = hmac.new(master, f"path:{provider}:{lender_slug}".encode(), hashlib.sha256)
    return digest.hexdigest()[:40]


def path_token_matches(*, given: str, lender_slug: str, provider: str) -> bool:
    expected = path_token_for(lender_slug=lender_slug, provider=provider)
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode())


def _digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(*, secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    *, header: str, secret: bytes, body: bytes, tolerance: int, now: float | None = None
) -> int:
    """Return the signed timestamp, or raise SignatureInvalid / TimestampStale."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as exc:
        raise SignatureInvalid("malformed signature header") from exc
    if not hmac.compare_digest(
        given.encode("ascii", "replace"), _digest(secret, timestamp, body).encode()
    ):
        raise SignatureInvalid("signature does not match")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise TimestampStale(f"timestamp {timestamp} is outside the {tolerance}s tolerance")
    return timestamp
