"""Deploy checks of the integrations' settings."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, register

from apps.core.checks import master_key_errors


@register(Tags.security, deploy=True)
def payments_webhook_master_key_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every lender's webhook secret derives from this key (payments/signing.py)."""
    return master_key_errors(setting="PAYMENTS_WEBHOOK_MASTER_KEY", check_id="integrations.E001")
