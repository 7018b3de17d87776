"""Payment providers' credentials at rest: sealed with Fernet under keys from the environment.

``PAYMENTS_CREDENTIALS_KEYS`` lists Fernet keys (32 url-safe base64 bytes each), newest
first. A secret is sealed with the first and opened with any of them (cryptography's
``MultiFernet``), so a key is rotated by putting a new one first, resealing every account
(``manage.py payments_credentials_rotate``), then dropping the old one. Nothing here logs a
value; a sealed blob is useless without a key, and no key is in the database.
"""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError


class CredentialsUnreadable(DomainError):
    """A sealed blob no configured key opens (a key dropped too early, or a damaged row)."""

    code, http_status = "credentials_unreadable", 409
    default_message = _(
        "The stored secrets can no longer be opened (their key was dropped): type every "
        "secret of this provider again."
    )


class CredentialsKeysMissing(DomainError):
    """No key to seal or open credentials with: ``PAYMENTS_CREDENTIALS_KEYS`` is empty."""

    code, http_status = "credentials_keys_missing", 500
    default_message = _("No key is configured to seal payment provider secrets.")


def _keys() -> MultiFernet:
    keys = [k for k in settings.PAYMENTS_CREDENTIALS_KEYS if k]
    if not keys:
        raise CredentialsKeysMissing()
    return MultiFernet([Fernet(k.encode()) for k in keys])


def seal(secrets: dict[str, str]) -> str:
    """``secrets`` sealed under the newest key ("" for none)."""
    if not secrets:
        return ""
    plain = json.dumps(secrets, sort_keys=True, separators=(",", ":")).encode()
    return _keys().encrypt(plain).decode()


def unseal(sealed: str) -> dict[str, str]:
    """The secrets in ``sealed`` ({} for ""), or ``CredentialsUnreadable``."""
    if not sealed:
        return {}
    try:
        opened: dict[str, str] = json.loads(_keys().decrypt(sealed.encode()))
    except InvalidToken as exc:
        raise CredentialsUnreadable() from exc
    return opened


def reseal(sealed: str) -> str:
    """``sealed`` again under the newest key (its secrets unchanged)."""
    if not sealed:
        return ""
    try:
        return _keys().rotate(sealed.encode()).decode()
    except InvalidToken as exc:
        raise CredentialsUnreadable() from exc
