"""The lender API's webhook endpoints (/api/lender/v1/webhooks/...): scope, tenancy, the secret
shown once, idempotent POSTs, the delivery log and "send again"."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from apps.core.actor import Actor
from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.integrations.payments.credentials import unseal
from apps.integrations.services.webhooks import (
    webhook_endpoint_create,
    webhooks_project,
    webhooks_send,
)
from apps.lenders.models import ApiKey
from tests.collections.factories import signed_loan
from tests.lenders.factories import api_key_for, api_key_header

pytestmark = pytest.mark.django_db

API = "/api/lender/v1/"
URL = "https://hooks.example.com/in"


def call(key: str, method: str, path: str, body: Any = None, idempotency_key: str | None = None):
    headers = api_key_header(key)
    client = Client()
    if method == "get":
        return client.get(API + path, body or {}, **headers)
    if method == "post":
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key or uuid.uuid4().hex
    return getattr(client, method)(
        API + path, body or {}, content_type="application/json", **headers
    )


def endpoint_of(lender, url: str = URL) -> WebhookEndpoint:
    return webhook_endpoint_create(lender_id=lender.pk, url=url, actor=Actor.system()).endpoint


def delivery_of(lender) -> WebhookDelivery:
    endpoint = endpoint_of(lender)
    signed_loan(lender)
    webhooks_project(lender_id=lender.pk)
    return WebhookDelivery.objects.get(endpoint=endpoint)


# every operation: method, path ({endpoint}, {delivery}), body
OPERATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("get", "webhooks/endpoints", None),
    ("post", "webhooks/endpoints", {"url": URL}),
    ("get", "webhooks/endpoints/{endpoint}", None),
    ("patch", "webhooks/endpoints/{endpoint}", {"enabled": False}),
    ("post", "webhooks/endpoints/{endpoint}/secret-rotation", None),
    ("get", "webhooks/endpoints/{endpoint}/deliveries", None),
    ("post", "webhooks/deliveries/{delivery}/resend", None),
    ("delete", "webhooks/endpoints/{endpoint}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_key_without_webhooks_manage_is_403(lender_a, method, path, body) -> None:
    delivery = delivery_of(lender_a)
    path = path.format(endpoint=delivery.endpoint_id, delivery=delivery.pk)
    others = [s for s in ApiKey.Scope.values if s != "webhooks:manage"]
    _, key = api_key_for(lender_a, scopes=others)
    response = call(key, method, path, body)
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "scope_missing"
    _, allowed = api_key_for(lender_a, scopes=["webhooks:manage"])
    assert call(allowed, method, path, body).status_code in (200, 201, 202, 204)


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_another_lenders_endpoint_is_not_found(lender_a, lender_b, method, path, body) -> None:
    theirs = delivery_of(lender_b)
    before = WebhookEndpoint.objects.get(pk=theirs.endpoint_id)
    _, key = api_key_for(lender_a, scopes=["webhooks:manage"])
    if "{" not in path:
        listed = call(key, method, path, body)
        assert listed.status_code in (200, 201)
        if method == "get":
            assert listed.json()["results"] == []
        return
    theirs_path = path.format(endpoint=theirs.endpoint_id, delivery=theirs.pk)
    missing_path = path.format(endpoint=10**9, delivery=10**9)
    seen = call(key, method, theirs_path, body)
    missing = call(key, method, missing_path, body)
    assert seen.status_code == missing.status_code == 404, seen.content
    assert seen.json()["code"] == missing.json()["code"]
    after = WebhookEndpoint.objects.get(pk=theirs.endpoint_id)  # nothing of B changed
    assert (after.url, after.enabled, after.sealed_secrets, after.updated_at) == (
        before.url,
        before.enabled,
        before.sealed_secrets,
        before.updated_at,
    )


def test_create_shows_the_secret_once_and_a_replay_holds_it_back(lender_a) -> None:
    _, key = api_key_for(lender_a, scopes=["webhooks:manage"])
    body = {"url": URL, "event_types": ["payment.applied", "loan.signed"], "description": "CRM"}
    first = call(key, "post", "webhooks/endpoints", body, idempotency_key="create-1")
    assert first.status_code == 201, first.content
    created = first.json()
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["loan.signed", "payment.applied"]
    again = call(key, "post", "webhooks/endpoints", body, idempotency_key="create-1")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == {**created, "secret": None}
    other = call(key, "post", "webhooks/endpoints", {"url": URL + "2"}, idempotency_key="create-1")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert WebhookEndpoint.objects.filter(lender=lender_a).count() == 1
    read = call(key, "get", f"webhooks/endpoints/{created['id']}").json()
    assert "secret" not in read
    assert read["description"] == "CRM"
    assert call(key, "post", "webhooks/endpoints", {"url": "ftp://x"}).status_code == 400
    unknown = call(key, "post", "webhooks/endpoints", {"url": URL, "event_types": ["nope"]})
    assert unknown.status_code == 400


def test_update_rotate_and_delete(lender_a) -> None:
    endpoint = endpoint_of(lender_a)
    _, key = api_key_for(lender_a, scopes=["webhooks:manage"])
    path = f"webhooks/endpoints/{endpoint.pk}"
    changed = call(key, "patch", path, {"event_types": ["loan.paid_off"], "enabled": False})
    assert changed.status_code == 200, changed.content
    assert changed.json()["url"] == URL  # what was not given stays
    assert (changed.json()["enabled"], changed.json()["disabled_reason"]) == (False, "by_lender")
    on = call(key, "patch", path, {"url": URL + "/v2", "enabled": True}).json()
    assert (on["url"], on["enabled"], on["event_types"]) == (URL + "/v2", True, ["loan.paid_off"])

    rotated = call(key, "post", path + "/secret-rotation")
    assert rotated.status_code == 201
    secret = rotated.json()["secret"]
    assert rotated.json()["previous_secret_until"] is not None
    # the new secret signs from now on, the previous one beside it for a while
    endpoint.refresh_from_db()
    secrets = unseal(endpoint.sealed_secrets)
    assert secrets["current"] == secret != secrets["previous"]

    assert call(key, "delete", path).status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert call(key, "get", path).status_code == 404


def test_deliveries_listed_and_sent_again(lender_a) -> None:
    delivery = delivery_of(lender_a)
    webhooks_send()  # to an address that does not answer: it fails and waits to retry
    _, key = api_key_for(lender_a, scopes=["webhooks:manage"])
    listed = call(key, "get", f"webhooks/endpoints/{delivery.endpoint_id}/deliveries").json()
    [row] = listed["results"]
    assert (row["id"], row["event_type"], row["event_id"]) == (
        delivery.pk,
        "loan.signed",
        f"evt_{delivery.event_id}",
    )
    assert row["attempts"] == 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", next_attempt_at=None)
    failed = call(
        key, "get", f"webhooks/endpoints/{delivery.endpoint_id}/deliveries", {"status": "failed"}
    )
    assert [r["id"] for r in failed.json()["results"]] == [delivery.pk]

    resent = call(key, "post", f"webhooks/deliveries/{delivery.pk}/resend", idempotency_key="r1")
    assert resent.status_code == 202, resent.content
    assert resent.json()["status"] == "pending"
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    # a repeat of the same POST is the first answer again: nothing is sent twice for it
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    again = call(key, "post", f"webhooks/deliveries/{delivery.pk}/resend", idempotency_key="r1")
    assert again["Idempotent-Replayed"] == "true"
    delivery.refresh_from_db()
    assert delivery.status == "failed"
