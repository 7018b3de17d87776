"""Deploy checks of the integrations' settings."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, register

from apps.core.checks import master_key_errors


@register(Tags.security, deploy=True)
def payments_webhook_master_key_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every lender's webhook secret derives from this key (payments/signing.py)."""
    return master_key_errors(setting="PAYMENTS_WEBHOOK_MASTER_KEY", check_id="integrations.E001")


@register(Tags.security, deploy=True)
def payments_credentials_keys_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Providers' credentials are sealed with these keys (payments/credentials.py): each must
    be a Fernet key, and there must be one."""
    from cryptography.fernet import Fernet
    from django.conf import settings
    from django.core.checks import Error

    keys = [k for k in settings.PAYMENTS_CREDENTIALS_KEYS if k]
    bad = []
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            bad.append(number)
    if keys and not bad:
        return []
    return [
        Error(
            "PAYMENTS_CREDENTIALS_KEYS needs Fernet keys, newest first"
            + (f"; key {', '.join(map(str, bad))} is not one." if bad else "; it is empty."),
            hint='Generate one: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())".',
            id="integrations.E002",
        )
    ]


@register(Tags.security, deploy=True)
def payments_callback_base_url_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Providers call back at this address (an M-Pesa push carries it, the back office shows
    what to register): it must be the product's public HTTPS address, never the demo's."""
    from urllib.parse import urlsplit

    from django.conf import settings
    from django.core.checks import Error

    url = urlsplit(settings.PAYMENTS_CALLBACK_BASE_URL)
    if url.scheme == "https" and url.hostname and url.hostname not in ("127.0.0.1", "localhost"):
        return []
    return [
        Error(
            "PAYMENTS_CALLBACK_BASE_URL must be the public HTTPS address providers call back "
            f"(now {settings.PAYMENTS_CALLBACK_BASE_URL or 'empty'!r}).",
            hint="e.g. https://pay.example.com: M-Pesa and Stripe refuse plain HTTP.",
            id="integrations.E003",
        )
    ]
