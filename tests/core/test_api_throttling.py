"""Every API throttle counts the address the product trusts (``client_ip``, which honours
``DJANGO_TRUSTED_PROXY_COUNT``), never an X-Forwarded-For header as the caller wrote it."""

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import ScopedRateThrottle

from apps.audit.models import AuditEvent
from tests.collections.factories import signed_loan
from tests.collections.webhooks import URL, event, headers
from tests.core.api_endpoints import api_endpoints
from tests.devices.enrollment import ENROLL, agent_key

pytestmark = pytest.mark.django_db


def spoofed(i: int) -> str:
    """A different made-up client address for each request."""
    return f"198.51.{i // 250}.{i % 250 + 1}"


def enroll(client, i: int, forwarded: str | None = None, **meta: str):
    """An enrollment with an unknown code (a 401 and an audit row when it gets through)."""
    body = {"token": f"t-{i}", "imei": "356938035643809", "agent_public_key": agent_key()}
    return client.post(
        ENROLL,
        data=body,
        content_type="application/json",
        HTTP_X_FORWARDED_FOR=forwarded or spoofed(i),
        **meta,
    )


def test_every_api_throttle_keys_on_the_trusted_address_when_the_caller_forges_the_header(
    settings,
) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    request = Request(
        APIRequestFactory().post("/", HTTP_X_FORWARDED_FOR="198.51.100.9", REMOTE_ADDR="192.0.2.1")
    )
    throttled = {}
    for url, view in api_endpoints():
        for throttle_class in view().get_throttles():
            throttled[url] = throttle_class.get_ident(request)
    assert {
        "/api/agent/v1/enroll",
        "/api/agent/v1/check-in",
        "/api/payments/v1/webhooks/demo/",
    } <= set(throttled)
    assert set(throttled.values()) == {"192.0.2.1"}, throttled


@pytest.fixture
def limit(monkeypatch) -> int:
    """The enrollment limit as shipped (AGENT_ENROLL_THROTTLE's default), whatever the
    environment says."""
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "enroll", "30/min")
    return 30


def test_sixty_enrollments_with_a_changing_header_get_429_and_write_no_audit_row_when_over_the_limit(
    client, limit
) -> None:
    statuses = [enroll(client, i).status_code for i in range(60)]
    assert statuses == [401] * limit + [429] * (60 - limit)
    assert AuditEvent.objects.filter(action="devices.enrollment.refused").count() == limit


def test_enrollments_behind_the_trusted_proxy_count_per_client_when_the_header_is_forged(
    client, settings, limit
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    # the proxy (10.0.0.2) appends the address it saw to whatever the caller sent
    behind_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    statuses = [
        enroll(client, i, f"{spoofed(i)}, 203.0.113.7", **behind_proxy).status_code
        for i in range(limit + 5)
    ]
    assert statuses == [401] * limit + [429] * 5
    assert enroll(client, 0, "203.0.113.8", **behind_proxy).status_code == 401  # another client


def test_webhook_deliveries_with_a_changing_header_get_429_when_over_the_limit(
    client, lender_a, monkeypatch
) -> None:
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "webhooks", "5/min")
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    statuses = []
    for i in range(10):
        body = event(loan.reference, "1.00", f"MP-{i}")
        statuses.append(
            client.post(
                URL,
                data=body,
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=spoofed(i),
                **headers(lender_a, body),
            ).status_code
        )
    assert statuses == [200] * 5 + [429] * 5
