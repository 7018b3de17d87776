"""The desired-state document and its signature.

Documents are built by one SQL statement (``apps.devices.services.state``),
for one phone or a hundred thousand, and stored once, never edited. The
signature is made when the document is handed to the phone: canonical JSON
(sorted keys, no spaces, UTF-8) and Ed25519 over exactly those bytes, with
the key version the document names. The agent verifies it with the lender's
public key it received at enrollment, and refuses a state whose version is
not higher than the one it applied, or whose ``valid_until`` has passed.
A state may announce the lender's next key (``next_key``); the phone trusts
it from the moment it applies that state, which the old key signed.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from apps.devices.keys import lender_signing_key

OFFLINE_LEASE = timedelta(days=7)


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


# What a state says besides its bookkeeping: re-issuing a state (to announce a
# new key) carries these over unchanged.
CONTENT_FIELDS = ("wallpaper_text", "lock_screen_text", "blocked_packages", "blocked_categories",
                  "alarm_times", "always_allowed_numbers", "fallback_level")  # fmt: skip


def sign_document(*, lender_slug: str, document: dict[str, Any]) -> str:
    key = lender_signing_key(lender_slug=lender_slug, version=document["key_version"])
    return base64.b64encode(key.sign(canonical(document))).decode()
