"""Drill 6: schemathesis over the whole OpenAPI schema, with valid and invalid credentials.

The schema is the one the app serves at /api/schema/, and every operation in it is fuzzed in
process through Django's WSGI handler: bodies, headers and path parameters that fit the schema
(positive) and that break it (negative), each sent once with credentials that hold (a real
enrolled phone's id and secret, a fresh enrollment code, the lender's HMAC signature over the
very bytes sent) and once with credentials that don't (a wrong secret, no header, a bad or
stale signature, an unknown lender). An operation added later is fuzzed without anyone
remembering to add it here. No answer may be a 5xx, and every answer must be what the schema
documents: its status code, its content type, its body.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.throttling import ScopedRateThrottle
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.core.actor import Actor
from apps.devices.services import enrollment_token_mint
from apps.integrations.funds_plaid import HEADER as PLAID_HEADER
from apps.integrations.models import WebhookDelivery
from apps.integrations.payments.signing import (
    LENDER_HEADER,
    SIGNATURE_HEADER,
    path_token_for,
    sign,
    webhook_secret_for,
)
from apps.integrations.services.webhooks import webhook_endpoint_create, webhooks_project
from apps.lenders.services import api_key_revoke
from tests.collections.daraja import paybill_for
from tests.collections.factories import signed_loan
from tests.devices.factories import enrolled_phone, phone_registered, valid_imei
from tests.drills.conftest import FULL, scale
from tests.funds.accounts import plaid_account, plaid_running
from tests.lenders.factories import api_key_for
from tools.fakes.plaid import FakePlaid

pytestmark = [pytest.mark.drill, pytest.mark.django_db]

SCHEMA_PATH = "/api/schema/?format=json"
# Not negative_data_rejection: DRF's CharField takes a number for a string (123 becomes
# "123") and trims whitespace before it checks max_length, by design, in every serializer;
# that check would fail on each text field for that alone.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Daraja's callbacks: each route on the lender's secret path, then the path's wrong token
# and a lender that is not there (the body is fuzzed in both).
DARAJA_VALID = ("stk", "c2b-validation", "c2b-confirmation")
DARAJA_INVALID = ("wrong token", "unknown lender")
# Plaid's webhooks: the Plaid-Verification JWT over the very bytes sent, or not
PLAID_INVALID = ("bad signature", "no signature", "stale", "signed another body", "unknown lender")
DEVICE_INVALID = ("wrong secret", "no header", "unknown device", "malformed", "other scheme")
API_KEY_INVALID = ("wrong secret", "no header", "revoked", "expired", "other scheme")
WEBHOOK_INVALID = (
    "bad signature",
    "no signature",
    "stale timestamp",
    "unknown lender",
    "signed another body",
)


@dataclass
class Tally:
    operations: set[str] = field(default_factory=set)
    cases: Counter[str] = field(default_factory=Counter)  # "valid" / "invalid"
    statuses: Counter[int] = field(default_factory=Counter)
    # answers 2xx by (caller's kind, valid credentials): the valid ones must get through
    accepted: Counter[tuple[str, bool]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    nonconforming: list[str] = field(default_factory=list)


@dataclass
class World:
    """The rows whose credentials hold: an enrolled phone, a phone waiting to enrol, a lender."""

    device_id: int
    device_secret: str
    pending_device_id: int
    lender_slug: str
    loan_reference: str
    currency: str
    plaid: FakePlaid  # the lender's Plaid, whose key signs its webhooks
    forger: FakePlaid  # another key under Plaid's key id
    loan_id: int = 0
    webhook_endpoint_id: int = 0
    webhook_delivery_id: int = 0
    api_keys: dict[str, str] = field(default_factory=dict)  # variant -> lender API key


@pytest.fixture
def wsgi_app():
    """Django's own WSGI handler, kept inside the test's transaction: like Django's test client,
    it must not close the database connection at the start and end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def plaid(settings) -> Iterator[FakePlaid]:
    with plaid_running(settings) as fake:
        yield fake


@pytest.fixture
def world(lender_a, plaid) -> World:
    paybill_for(lender_a)  # Daraja's callbacks reach the view's checks, not "no such provider"
    plaid_account(lender_a, plaid)  # Plaid's webhooks reach the item lookup, not "no account"
    device, secret, _ = enrolled_phone(lender_a)
    pending = phone_registered(signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y")
    # a webhook endpoint of the lender's (nothing listens there) with a delivery in its log
    endpoint = webhook_endpoint_create(
        lender_id=lender_a.pk, url="http://127.0.0.1:9/hooks", actor=Actor.system()
    ).endpoint
    signed_loan(lender_a)
    webhooks_project(lender_id=lender_a.pk)
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id").first()
    _, key = api_key_for(lender_a)
    revoked, revoked_key = api_key_for(lender_a)
    api_key_revoke(api_key_id=revoked.pk, lender_id=lender_a.pk, actor=Actor.system(), reason="x")
    _, expired_key = api_key_for(lender_a, expires_at=timezone.now() + timedelta(seconds=1))
    return World(
        device_id=device.pk,
        device_secret=secret,
        pending_device_id=pending.pk,
        lender_slug=lender_a.slug,
        loan_reference=device.loan.reference,
        currency=device.loan.currency,
        loan_id=device.loan_id,
        webhook_endpoint_id=endpoint.pk,
        webhook_delivery_id=delivery.pk,
        api_keys={
            "valid": f"Api-Key {key}",
            "wrong secret": f"Api-Key {key[:-4]}abcd",
            "revoked": f"Api-Key {revoked_key}",
            "expired": f"Api-Key {expired_key}",
            "other scheme": f"Bearer {key}",
        },
        plaid=plaid,
        forger=FakePlaid(kid=plaid.kid),
    )


@pytest.fixture
def unthrottled(monkeypatch) -> None:
    """The per-phone and per-caller throttles would answer most cases with 429 before the view
    runs; the drill is about the views, so every scope gets room for the whole run."""
    for scope in list(ScopedRateThrottle.THROTTLE_RATES):
        monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, scope, "1000000/min")


def kind_of(operation: schemathesis.APIOperation) -> str:
    """How the operation's caller proves who it is, read from the schema itself."""
    raw = operation.definition.raw
    if "/funds/v1/plaid/" in operation.path:
        return "plaid"
    if any("deviceAuth" in requirement for requirement in raw.get("security") or []):
        return "device"
    if any("lenderApiKey" in requirement for requirement in raw.get("security") or []):
        return "lender key"
    if any(p.get("name") == SIGNATURE_HEADER for p in raw.get("parameters") or []):
        return "webhook"
    if "enroll" in operation.path:
        return "enrollment code"
    if "/daraja/" in operation.path:
        return "daraja"
    if "/providers/" in operation.path:
        return "provider webhook"
    return "public"


def raw_body(case: schemathesis.Case) -> bytes | None:
    """The body exactly as it goes on the wire, so that a signature can cover it."""
    kwargs = case.as_transport_kwargs()
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if data is None:
        return None
    return data if isinstance(data, bytes) else str(data).encode()


def prepare(
    case: schemathesis.Case,
    *,
    kind: str,
    valid: bool,
    variant: str,
    mode: GenerationMode,
    world: World,
) -> dict[str, Any]:
    """Put the credentials on the case; returns extra keyword arguments for ``case.call``."""
    headers = case.headers if case.headers is not None else {}
    case.headers = headers
    if kind == "device":
        headers.pop("Authorization", None)
        secret = world.device_secret
        header = {
            "valid": f"Device {world.device_id}:{secret}",
            "wrong secret": f"Device {world.device_id}:{secret[::-1]}",
            "unknown device": f"Device {world.device_id + 10**9}:{secret}",
            "malformed": f"Device {secret}",
            "other scheme": f"Bearer {secret}",
            "no header": None,
        }["valid" if valid else variant]
        if header is not None:
            headers["Authorization"] = header
        return {}
    if kind == "lender key":
        headers.pop("Authorization", None)
        header = world.api_keys.get("valid" if valid else variant)
        if header is not None:
            headers["Authorization"] = header
        if valid:  # reach the lender's own rows, not only missing ones
            if isinstance(case.body, dict) and "loan_id" in case.body:
                case.body["loan_id"] = world.loan_id
            if mode is GenerationMode.POSITIVE and case.method.upper() == "POST":
                headers["Idempotency-Key"] = uuid.uuid4().hex
        return {}
    if kind == "enrollment code":
        if valid and isinstance(case.body, dict):
            token = enrollment_token_mint(device_id=world.pending_device_id, actor=Actor.system())
            case.body["token"] = token.token
        return {}
    if kind == "daraja":
        lender = "no-such-lender" if variant == "unknown lender" else world.lender_slug
        token = path_token_for(lender_slug=world.lender_slug, provider="mpesa")
        case.path_parameters = {
            "lender_slug": lender,
            "token": token[::-1] if variant == "wrong token" else token,
            "route": variant if variant in DARAJA_VALID else "stk",
        }
        return {}
    if kind == "provider webhook":  # Stripe's: the world's lender has no Stripe account
        case.path_parameters = {"provider": "stripe", "lender_slug": world.lender_slug}
        return {}
    if kind == "plaid":
        body = raw_body(case) or b""
        lender = "no-such-lender" if variant == "unknown lender" else world.lender_slug
        case.path_parameters = {"lender_slug": lender}
        token = {
            "valid": world.plaid.sign(body),
            "unknown lender": world.plaid.sign(body),
            "bad signature": world.forger.sign(body),
            "stale": world.plaid.sign(body, int(time.time()) - 3600),
            "signed another body": world.plaid.sign(body + b" "),
            "no signature": None,
        }["valid" if valid else variant]
        headers.pop(PLAID_HEADER, None)
        if token is not None:
            headers[PLAID_HEADER] = token
        return {"data": body} if body else {}
    if kind == "webhook":
        data = case.body.get("data") if isinstance(case.body, dict) else None
        if valid and isinstance(data, dict):  # reach a real loan, not just a missing one
            data["loan"] = world.loan_reference
            if mode is GenerationMode.POSITIVE:
                data["currency"] = world.currency
                if "received_at" in data:  # the loan's own window: since signing, until now
                    data["received_at"] = datetime.now(UTC).isoformat()
        body = raw_body(case) or b""
        lender = "no-such-lender" if variant == "unknown lender" else world.lender_slug
        secret = webhook_secret_for(
            lender_slug=world.lender_slug, provider=case.path_parameters["provider"]
        )
        now = int(time.time())
        signature = {
            "valid": sign(secret=secret, body=body, timestamp=now),
            "unknown lender": sign(secret=secret, body=body, timestamp=now),
            "bad signature": sign(secret=b"not the lender's secret", body=body, timestamp=now),
            "stale timestamp": sign(secret=secret, body=body, timestamp=now - 3600),
            "signed another body": sign(secret=secret, body=body + b" ", timestamp=now),
            "no signature": None,
        }["valid" if valid else variant]
        headers[LENDER_HEADER] = lender
        headers.pop(SIGNATURE_HEADER, None)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        return {"data": body} if body else {}
    return {}


def fuzz(
    operation, *, mode: GenerationMode, valid: bool, examples: int, world: World, tally: Tally, app
) -> None:
    kind = kind_of(operation)
    variants = {
        "device": DEVICE_INVALID,
        "lender key": API_KEY_INVALID if not valid else ("generated",),
        "webhook": WEBHOOK_INVALID,
        "daraja": DARAJA_INVALID if not valid else DARAJA_VALID,
        "plaid": PLAID_INVALID,
    }.get(kind, ("generated",))
    fixed: dict[str, Any] = {}
    # the router, not the view, answers a path that is no slug: prepare() fills these in
    if kind == "webhook":
        fixed["path_parameters"] = {"provider": settings.PAYMENTS_PROVIDERS[0]}
    elif kind == "daraja":
        fixed["path_parameters"] = {"lender_slug": "a", "token": "a", "route": "stk"}
    elif kind == "provider webhook":
        fixed["path_parameters"] = {"provider": "stripe", "lender_slug": "a"}
    elif kind == "lender key":  # the router answers an id that is no number: the world's rows
        ids = {
            "device_id": world.device_id,
            "loan_id": world.loan_id,
            "endpoint_id": world.webhook_endpoint_id,
            "delivery_id": world.webhook_delivery_id,
        }
        named = {name: value for name, value in ids.items() if f"{{{name}}}" in operation.path}
        if named:
            fixed["path_parameters"] = named
    elif kind == "plaid":
        fixed["path_parameters"] = {"lender_slug": "a"}
    strategy = operation.as_strategy(generation_mode=mode, **fixed)

    # Small runs (make test) draw the same cases every time; full runs draw new ones.
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not FULL,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, variant=st.sampled_from(variants))
    def run(case, variant) -> None:
        extra = prepare(case, kind=kind, valid=valid, variant=variant, mode=mode, world=world)
        response = case.call(app=app, **extra)
        tally.cases["valid" if valid else "invalid"] += 1
        tally.statuses[response.status_code] += 1
        if 200 <= response.status_code < 300:
            tally.accepted[kind, valid] += 1
        where = f"{operation.label} [{mode.value}, {'valid' if valid else variant}]"
        if response.status_code >= 500:
            tally.server_errors.append(f"{where}: {response.status_code}\n{case.as_curl_command()}")
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:
            tally.nonconforming.append(f"{where}: {str(exc)[:1500]}")

    run()


def test_fuzzing_the_whole_schema_finds_no_server_error(
    wsgi_app, world, unthrottled, report
) -> None:
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, wsgi_app)
    examples = scale(8, 150)
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        tally.operations.add(operation.label)
        for valid in (True, False):
            for mode in MODES:
                fuzz(
                    operation,
                    mode=mode,
                    valid=valid,
                    examples=examples,
                    world=world,
                    tally=tally,
                    app=wsgi_app,
                )
    total = sum(tally.cases.values())
    report(
        f"schema fuzzing: {len(tally.operations)} operations, {total} cases "
        f"(valid creds {tally.cases['valid']}, invalid {tally.cases['invalid']}), "
        f"server errors {len(tally.server_errors)}; accepted "
        + ", ".join(
            f"{kind} {'valid' if ok else 'invalid'} {n}"
            for (kind, ok), n in sorted(tally.accepted.items())
        )
    )
    assert len(tally.operations) >= 8, sorted(tally.operations)
    # the valid credentials got through (else only the authentication was fuzzed), and no
    # invalid ones did
    assert tally.accepted["device", True], tally.accepted
    assert tally.accepted["webhook", True], tally.accepted
    assert tally.accepted["lender key", True], tally.accepted
    assert tally.accepted["plaid", True], tally.accepted
    assert not [key for key, n in tally.accepted.items() if not key[1] and key[0] != "public"]
    assert not tally.server_errors, "\n\n".join(tally.server_errors[:10])
    assert not tally.nonconforming, "\n\n".join(tally.nonconforming[:10])
