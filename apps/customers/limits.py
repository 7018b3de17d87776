"""The customer login's cache keys: a keyed hash stands for a mobile number, never the number
(the counters themselves are ``apps.core.ratelimit``'s)."""

from __future__ import annotations

from django.utils.crypto import salted_hmac


def number_key(*, lender_id: int, e164: str) -> str:
    """A keyed hash standing for a lender's mobile number in cache keys."""
    return salted_hmac("customers.login-number", f"{lender_id}:{e164}").hexdigest()[:32]
