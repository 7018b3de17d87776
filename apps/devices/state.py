"""The desired-state document and its signature.

The document is canonical JSON (sorted keys, no spaces, UTF-8); the signature
is Ed25519 over exactly those bytes. The agent verifies it with the lender's
public key it received at enrollment, and refuses a state whose version is
not higher than the one it applied, or whose ``valid_until`` has passed.
A state may announce the lender's next key (``next_key``); the phone trusts
it from the moment it applies that state, which the old key signed.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from apps.devices.keys import lender_signing_key
from apps.lenders.country_rules import always_allowed_packages

OFFLINE_LEASE = timedelta(days=7)


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def state_document(
    *,
    device_id: int,
    version: int,
    level: str,
    issued_at: datetime,
    locale: str,
    wallpaper_text: str = "",
    lock_screen_text: str = "",
    blocked_packages: list[str] | None = None,
    blocked_categories: list[str] | None = None,
    alarm_times: list[str] | None = None,
    always_allowed_numbers: list[str] | None = None,
    key_version: int,
    fallback_level: str = "normal",
    next_key: dict[str, Any] | None = None,
) -> dict[str, Any]:
    document = {
        "device": device_id,
        "version": version,
        "level": level,
        "issued_at": issued_at.isoformat(),
        "valid_until": (issued_at + OFFLINE_LEASE).isoformat(),
        # applied if the phone cannot check in before valid_until; never a lock
        # for a loan that was current when the lease was issued
        "fallback_level": fallback_level,
        "locale": locale,
        "wallpaper_text": wallpaper_text,
        "lock_screen_text": lock_screen_text,
        "blocked_packages": sorted(blocked_packages or []),
        "blocked_categories": sorted(blocked_categories or []),
        "alarm_times": sorted(alarm_times or []),
        "always_allowed_packages": sorted(always_allowed_packages()),
        "always_allowed_numbers": sorted(always_allowed_numbers or []),
        "key_version": key_version,
    }
    if next_key is not None:
        # a new lender key, announced under the old one; trusted once this state is acked
        document["next_key"] = next_key
    return document


# What a state says besides its bookkeeping: re-issuing a state (to announce a
# new key) carries these over unchanged.
CONTENT_FIELDS = ("wallpaper_text", "lock_screen_text", "blocked_packages", "blocked_categories",
                  "alarm_times", "always_allowed_numbers", "fallback_level")  # fmt: skip


def sign_document(*, lender_slug: str, document: dict[str, Any]) -> str:
    key = lender_signing_key(lender_slug=lender_slug, version=document["key_version"])
    return base64.b64encode(key.sign(canonical(document))).decode()
