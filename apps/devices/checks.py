"""Deploy checks of the devices' settings."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, register

from apps.core.checks import master_key_errors


@register(Tags.security, deploy=True)
def device_signing_master_key_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every lender's Ed25519 signing key derives from this key (keys.py)."""
    return master_key_errors(setting="DEVICE_SIGNING_MASTER_KEY", check_id="devices.E001")
