"""System checks the apps register for their own settings (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error

MASTER_KEY_MIN_BYTES = 32


def master_key_errors(*, setting: str, check_id: str) -> list[CheckMessage]:
    """An error naming ``setting`` when the master key it holds is shorter than 32 bytes.

    A master key derives every lender's secret by HMAC-SHA256, whose security is at most
    the key's: a short or guessable one lets anyone who guesses it sign for every lender.
    32 bytes (UTF-8, as the key is used) is SHA-256's own strength.
    tests/core/test_checks.py.
    """
    size = len(str(getattr(settings, setting, "") or "").encode())
    if size >= MASTER_KEY_MIN_BYTES:
        return []
    return [
        Error(
            f"{setting} is {size} bytes long; production needs at least "
            f"{MASTER_KEY_MIN_BYTES} random bytes.",
            hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))". '
            "A new key changes every secret derived from it.",
            id=check_id,
        )
    ]
