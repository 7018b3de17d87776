"""A body larger than Django's DATA_UPLOAD_MAX_MEMORY_SIZE gets 413 in the API's error shape
from every API endpoint, answered from the declared length before the body is read."""

import io
import json

import pytest
from django.conf import settings

from tests.collections.webhooks import headers
from tests.core.api_endpoints import api_endpoints
from tests.devices.enrollment import ENROLL, agent_key
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


class CountingStream(io.BytesIO):
    """The request's input, counting the bytes the server read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def assert_too_large(response, limit: int | None = None) -> None:
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == "payload_too_large"
    assert body["extra"] == {"limit": limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE}


def test_an_enrollment_without_credentials_gets_413_when_its_token_is_3_mb(client) -> None:
    body = {"token": "x" * (3 * MB), "imei": "356938035643809", "agent_public_key": agent_key()}
    assert_too_large(client.post(ENROLL, data=body, content_type="application/json"))


def test_an_agent_event_gets_413_when_its_detail_is_5_mb(client, lender_a) -> None:
    device, secret, _ = enrolled_phone(lender_a)
    body = {
        "event_id": "e-1",
        "kind": "sim_changed",
        "occurred_at": "2026-01-01T00:00:00Z",
        "detail": {"note": "x" * (5 * MB)},
    }
    response = client.post(
        "/api/agent/v1/events",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {device.pk}:{secret}",
    )
    assert_too_large(response)


def test_every_api_endpoint_answers_413_before_reading_the_body_when_it_is_over_the_limit(
    client, lender_a
) -> None:
    device, secret, _ = enrolled_phone(lender_a)
    body = json.dumps({"token": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}).encode()
    endpoints = list(api_endpoints())
    assert len(endpoints) >= 10  # the agent API, the webhook, the schema and its page
    for url, view in endpoints:
        for method in ("post", "put", "patch"):
            # the webhook checks its smaller limit itself, to audit the refusal
            own = getattr(view, "body_size_checked_by_view", False) and hasattr(view, method)
            limit = settings.PAYMENTS_WEBHOOK_MAX_BYTES if own else None
            stream = CountingStream(body)
            response = getattr(client, method)(
                url,
                data=body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Device {device.pk}:{secret}",
                **headers(lender_a, body),
                **{"wsgi.input": stream},
            )
            assert_too_large(response, limit)
            assert stream.bytes_read == 0, (url, method)


def test_every_operation_of_the_schema_documents_413() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "413" not in operation["responses"]
    ]
    assert schema["paths"]
    assert not undocumented
