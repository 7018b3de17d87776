"""The API's throttles, counting per address the product trusts.

DRF's own ``get_ident`` keys an anonymous caller on the X-Forwarded-For header as the
caller sent it (unless ``NUM_PROXIES`` is set, and then with its own reading of the
header): changing the header gave each request a fresh bucket, so the enrollment and
webhook limits could be skipped. Every throttle here keys on ``client_ip`` instead,
the address the audit and django-axes record, which honours
``DJANGO_TRUSTED_PROXY_COUNT``. tests/core/test_api_throttling.py walks every API view.
"""

from __future__ import annotations

from typing import Any

from rest_framework import throttling

from apps.core.actor import client_ip


class ClientIpIdentMixin:
    """Keys the throttle on ``client_ip``: REMOTE_ADDR, or the address the outermost
    trusted proxy saw, never a value the caller chose."""

    def get_ident(self, request: Any) -> str:
        return client_ip(request) or ""


class ScopedRateThrottle(ClientIpIdentMixin, throttling.ScopedRateThrottle):
    """DRF's scoped throttle (``throttle_scope`` on the view), per trusted address for an
    anonymous caller and per principal (a phone, an agent) for an authenticated one."""
