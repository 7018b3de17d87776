"""The lender API (/api/lender/v1/): scopes, keys, loans, payments, phones and their commands,
through the back office's services and rules."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.collections.api.lender.devices import DeviceDetailApi
from apps.collections.models import LoanPause, ManualLock, Payment, PaymentReversal
from apps.core.actor import Actor
from apps.devices.selectors import device_list_for_lender
from apps.lenders.models import ApiKey
from apps.lenders.selectors import lender_local_date
from apps.lenders.services import api_key_revoke
from tests.collections.factories import signed_loan
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import api_key_for, api_key_header

pytestmark = pytest.mark.django_db

API = "/api/lender/v1/"
NOW = timezone.now().isoformat()

# every operation: method, path (with {loan} and {device}), body, the scope it needs
OPERATIONS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("get", "loans", None, "loans:read"),
    ("post", "loans", {"external_id": "x"}, "loans:write"),
    ("post", "loans/{loan}/enrollment-code", None, "loans:write"),
    ("get", "loans/{loan}", None, "loans:read"),
    ("get", "payments", None, "loans:read"),
    (
        "post",
        "payments",
        {
            "loan_id": "{loan}",
            "amount": "100.00",
            "currency": "KES",
            "provider_reference": "p-1",
            "received_at": NOW,
        },
        "payments:write",
    ),
    (
        "post",
        "payments/reversals",
        {
            "loan_id": "{loan}",
            "kind": "refund",
            "amount": "1.00",
            "currency": "KES",
            "provider_reference": "r-1",
            "payment_provider_reference": "p-0",
            "received_at": NOW,
        },
        "payments:write",
    ),
    ("get", "devices", None, "devices:read"),
    ("get", "devices/{device}", None, "devices:read"),
    ("post", "devices/{device}/lift", {"reason": "Test."}, "devices:command"),
    (
        "post",
        "devices/{device}/promise",
        {"reason": "Test.", "until": "2099-01-01"},
        "devices:command",
    ),
    (
        "post",
        "devices/{device}/hardship-pause",
        {"reason": "Test.", "until": "2099-01-01"},
        "devices:command",
    ),
    ("post", "devices/{device}/manual-lock", {"reason": "Test."}, "devices:command"),
    ("post", "devices/{device}/message", {"reason": "Test."}, "devices:command"),
    ("post", "devices/{device}/unlock-code/resend", {"reason": "Test."}, "devices:command"),
]


def call(key: str, method: str, path: str, body: Any = None, idempotency_key: str | None = None):
    headers = api_key_header(key)
    if method == "post":
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key or uuid.uuid4().hex
        return Client().post(API + path, body or {}, content_type="application/json", **headers)
    return Client().get(API + path, body or {}, **headers)


@pytest.fixture
def phone(lender_a):
    device, _, _ = enrolled_phone(lender_a)
    return device


def fill(value: Any, phone) -> Any:
    if isinstance(value, dict):
        return {k: fill(v, phone) for k, v in value.items()}
    if value == "{loan}":
        return phone.loan_id
    return value


def path_of(path: str, phone) -> str:
    return path.format(loan=phone.loan_id, device=phone.pk)


@pytest.mark.parametrize(("method", "path", "body", "scope"), OPERATIONS)
def test_key_without_the_scope_is_403(lender_a, phone, method, path, body, scope) -> None:
    others = [s for s in ApiKey.Scope.values if s != scope]
    _, key = api_key_for(lender_a, scopes=others)
    response = call(key, method, path_of(path, phone), fill(body, phone))
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "scope_missing"
    _, allowed = api_key_for(lender_a, scopes=[scope])
    assert call(allowed, method, path_of(path, phone), fill(body, phone)).status_code != 403


@pytest.mark.parametrize(("method", "path", "body", "scope"), OPERATIONS)
def test_revoked_or_expired_key_is_401(lender_a, phone, method, path, body, scope) -> None:
    revoked, revoked_key = api_key_for(lender_a)
    api_key_revoke(api_key_id=revoked.pk, lender_id=lender_a.pk, actor=Actor.system(), reason="x")
    expired, expired_key = api_key_for(lender_a)
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    for key in (revoked_key, expired_key, "nokey.atall"):
        response = call(key, method, path_of(path, phone), fill(body, phone))
        assert response.status_code == 401, (key, response.content)
    assert Client().get(API + path_of(path, phone)).status_code == 401


def test_loans_list_filters_and_reads(lender_a, phone) -> None:
    _, key = api_key_for(lender_a, scopes=["loans:read"])
    late = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=75))
    listed = call(key, "get", "loans").json()
    assert [row["id"] for row in listed["results"]] == [late.pk, phone.loan_id]
    overdue = call(key, "get", "loans", {"days_overdue_min": 1}).json()["results"]
    assert [row["id"] for row in overdue] == [late.pk]
    assert overdue[0]["days_overdue"] > 30
    current = call(key, "get", "loans", {"days_overdue_max": 0}).json()["results"]
    assert [row["id"] for row in current] == [phone.loan_id]
    assert call(key, "get", "loans", {"stage": "lock"}).json()["results"] == []
    paged = call(key, "get", "loans", {"limit": 1}).json()
    assert len(paged["results"]) == 1
    assert paged["next"]
    one = call(key, "get", f"loans/{late.pk}").json()
    assert one["reference"] == late.reference
    assert Decimal(one["outstanding"]) > 0
    assert call(key, "get", "loans", {"stage": "nope"}).status_code == 400


def test_loan_of_another_lender_is_not_found(lender_a, lender_b) -> None:
    _, key = api_key_for(lender_a)
    other = signed_loan(lender_b)
    response = call(key, "get", f"loans/{other.pk}")
    assert response.status_code == 404
    assert response.json()["code"] == "loan_not_found"


def test_payment_posted_is_applied_once_and_replayed(lender_a, phone) -> None:
    _, key = api_key_for(lender_a, scopes=["payments:write", "loans:read"])
    body = {
        "loan_id": phone.loan_id,
        "amount": "500.00",
        "currency": "KES",
        "provider_reference": "bank-77",
        "received_at": NOW,
    }
    first = call(key, "post", "payments", body, idempotency_key="k-1")
    assert first.status_code == 201, first.content
    again = call(key, "post", "payments", body, idempotency_key="k-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    # another key, same provider reference: the payment's own idempotency
    third = call(key, "post", "payments", body, idempotency_key="k-2")
    assert (third.status_code, third.json()["id"]) == (200, first.json()["id"])
    conflict = call(key, "post", "payments", {**body, "amount": "600.00"}, idempotency_key="k-1")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"
    payment = Payment.objects.get(lender=lender_a)
    assert (payment.amount, payment.channel) == (Decimal("500.00"), "lender_api")
    listed = call(key, "get", "payments", {"loan_id": phone.loan_id}).json()["results"]
    assert [row["id"] for row in listed] == [payment.pk]


def test_post_without_idempotency_key_is_400(lender_a, phone) -> None:
    _, key = api_key_for(lender_a)
    response = Client().post(
        API + "payments", {}, content_type="application/json", **api_key_header(key)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"currency": "USD"}, "currency_mismatch"),
        ({"currency": "XXQ"}, "invalid"),
        ({"amount": "1e3"}, "invalid"),
        ({"received_at": (timezone.now() + timedelta(days=1)).isoformat()}, "invalid"),
    ],
)
def test_payment_refusals_have_a_stable_code(lender_a, phone, change, code) -> None:
    _, key = api_key_for(lender_a)
    body = {
        "loan_id": phone.loan_id,
        "amount": "500.00",
        "currency": "KES",
        "provider_reference": "bank-1",
        "received_at": NOW,
        **change,
    }
    response = call(key, "post", "payments", body)
    assert 400 <= response.status_code < 500
    assert response.json()["code"] == code
    assert not Payment.objects.filter(lender=lender_a).exists()


def test_reversal_of_a_posted_payment(lender_a, phone) -> None:
    _, key = api_key_for(lender_a)
    call(
        key,
        "post",
        "payments",
        {
            "loan_id": phone.loan_id,
            "amount": "500.00",
            "currency": "KES",
            "provider_reference": "bank-9",
            "received_at": NOW,
        },
    )
    response = call(
        key,
        "post",
        "payments/reversals",
        {
            "loan_id": phone.loan_id,
            "kind": "chargeback",
            "amount": "200.00",
            "currency": "KES",
            "provider_reference": "cb-1",
            "payment_provider_reference": "bank-9",
            "received_at": NOW,
        },
    )
    assert response.status_code == 201, response.content
    assert PaymentReversal.objects.get(lender=lender_a).amount == Decimal("200.00")
    listed = call(key, "get", "payments").json()["results"]
    assert Decimal(listed[0]["reversed_amount"]) == Decimal("200.00")


def test_device_state(lender_a, phone) -> None:
    _, key = api_key_for(lender_a, scopes=["devices:read"])
    state = call(key, "get", f"devices/{phone.pk}").json()
    assert state["loan_id"] == phone.loan_id
    assert state["desired_version"] == phone.desired_version
    assert state["desired_level"] == "normal"
    assert state["acknowledged_version"] == phone.acked_version
    assert state["in_sync"] is (phone.acked_version >= phone.desired_version)
    assert state["events"] == []
    # the plain dict the view builds is the body its serializer describes, read by the ORM
    (orm,) = device_list_for_lender(lender_id=lender_a.pk).filter(pk=phone.pk)
    assert state == json.loads(json.dumps(DeviceDetailApi.OutputSerializer(orm).data))
    listed = call(key, "get", "devices", {"loan_id": phone.loan_id}).json()["results"]
    assert [row["id"] for row in listed] == [phone.pk]


def test_commands_go_through_the_back_office_rules(lender_a, phone) -> None:
    _, key = api_key_for(lender_a, scopes=["devices:command"])
    lift = call(key, "post", f"devices/{phone.pk}/lift", {"reason": "Paid at the branch."})
    assert (lift.status_code, lift.json()["status"]) == (200, "none")
    # nothing overdue: no promise, no manual lock (the back office refuses them too)
    promise = call(
        key,
        "post",
        f"devices/{phone.pk}/promise",
        {"reason": "Will pay.", "until": str(timezone.now().date() + timedelta(days=3))},
    )
    assert (promise.status_code, promise.json()["code"]) == (409, "nothing_overdue")
    lock = call(key, "post", f"devices/{phone.pk}/manual-lock", {"reason": "Gone silent."})
    assert lock.status_code in (403, 409), lock.content
    assert not ManualLock.objects.exists()
    # a hardship pause is a request a supervisor decides
    pause = call(
        key,
        "post",
        f"devices/{phone.pk}/hardship-pause",
        {"reason": "Flood.", "until": str(timezone.now().date() + timedelta(days=20))},
    )
    assert pause.status_code == 202, pause.content
    assert LoanPause.objects.get(pk=pause.json()["request_id"]).status == "requested"
    no_code = call(key, "post", f"devices/{phone.pk}/unlock-code/resend", {"reason": "Lost."})
    assert no_code.status_code == 404
    assert no_code.json()["code"] == "offline_code_unknown"
    assert call(key, "post", f"devices/{phone.pk}/lift", {}).json()["code"] == "invalid"
    assert call(key, "post", f"devices/{phone.pk}/release", {"reason": "x"}).status_code == 404


def test_manual_lock_asked_through_the_api_waits_for_a_second_person(lender_a) -> None:
    from tests.collections.factories import noticed

    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=75))
    noticed(device.loan)
    _, key = api_key_for(lender_a, scopes=["devices:command"])
    response = call(key, "post", f"devices/{device.pk}/manual-lock", {"reason": "Gone silent."})
    assert response.status_code == 202, response.content
    ask = ManualLock.objects.get(pk=response.json()["request_id"])
    assert (ask.status, ask.requested_by_id) == ("requested", None)
    device.loan.refresh_from_db()
    assert device.loan.stage != "lock"


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_identical_posts_make_one_payment(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    _, key = api_key_for(lender_a)
    body = {
        "loan_id": device.loan_id,
        "amount": "250.00",
        "currency": "KES",
        "provider_reference": "bank-race",
        "received_at": NOW,
    }

    def one(_: int) -> tuple[int, Any]:
        try:
            response = call(key, "post", "payments", body, idempotency_key="race-1")
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(one, range(5)))
    assert Payment.objects.filter(lender=lender_a).count() == 1
    assert {status for status, _ in answers} == {201}
    assert len({body["id"] for _, body in answers}) == 1


CONSENT_TEXT = "I agree to pay 12 monthly installments; the phone may be restricted if I do not."


def loan_body(lender, product, **changes: Any) -> dict[str, Any]:
    import hashlib

    from tests.devices.factories import valid_imei

    body = {
        "external_id": "LS-1001",
        "customer": {
            "full_name": "Wanjiru Kamau",
            "phone": "0712345678",
            "national_id": "12345678",
        },
        "phone": {"imei": valid_imei(), "brand": "Tecno", "model": "Spark 20"},
        "product_id": product.pk,
        "device_price": "12000.00",
        "down_payment": "2000.00",
        "consent": {
            "text": CONSENT_TEXT,
            "text_sha256": hashlib.sha256(CONSENT_TEXT.encode()).hexdigest(),
            "text_version": "ls-3",
            "method": "sms_code",
            "given_at": NOW,
        },
    }
    return {**body, **changes}


@pytest.fixture
def product(lender_a):
    from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for

    restriction_policy_version_for(lender_a)
    return LoanProductFactory(lender=lender_a)


def test_loan_created_from_the_lenders_system_then_its_enrollment_code(lender_a, product):
    import base64

    from apps.audit.models import AuditEvent
    from apps.collections.models import Loan
    from apps.customers.models import ConsentRecord
    from apps.devices.models import Device, EnrollmentToken
    from apps.devices.services import enrollment_token_live_or_mint

    _, key = api_key_for(lender_a, scopes=["loans:write", "loans:read"])
    body = loan_body(lender_a, product)
    created = call(key, "post", "loans", body)
    assert created.status_code == 201, created.content
    loan = Loan.objects.get(lender=lender_a, external_id="LS-1001")
    assert created.json()["id"] == loan.pk
    assert (loan.device_price_amount, loan.status) == (Decimal("12000.00"), "active")
    consent = ConsentRecord.objects.get(pk=loan.consent_id)
    assert (consent.text, consent.method, consent.code_check) == (
        CONSENT_TEXT,
        "lender_system",
        "sms_code",
    )
    device = Device.objects.get(loan=loan)
    assert (device.pk, device.status) == (created.json()["device_id"], "pending")
    assert AuditEvent.objects.filter(lender=lender_a, action="collections.loan.signed").exists()
    # the same loan again under another Idempotency-Key: the loan, not a second one
    again = call(key, "post", "loans", body)
    assert (again.status_code, again.json()["id"]) == (200, loan.pk)
    other = call(key, "post", "loans", {**body, "device_price": "13000.00"})
    assert other.status_code == 409
    assert Loan.objects.filter(lender=lender_a).count() == 1
    found = call(key, "get", "loans", {"external_id": "LS-1001"}).json()["results"]
    assert [row["id"] for row in found] == [loan.pk]

    code = call(key, "post", f"loans/{loan.pk}/enrollment-code")
    assert code.status_code == 201, code.content
    answer = code.json()
    token = answer["payload"]["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["token"]
    assert token
    assert answer["qr_svg"].startswith("<?xml") or "<svg" in answer["qr_svg"]
    assert base64.b64decode(answer["qr_png_base64"]).startswith(b"\x89PNG")
    # derived as the counter's codes are: the counter's page shows this code, not a new one
    shown = enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    assert shown.token == token
    assert shown.expires_at == datetime.fromisoformat(answer["expires_at"])
    # a POST mints: the code before stops working
    fresh = call(key, "post", f"loans/{loan.pk}/enrollment-code").json()["payload"]
    assert fresh["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["token"] != token
    assert EnrollmentToken.objects.filter(device=device, revoked_at__isnull=True).count() == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (
            {
                "consent": {
                    "text": CONSENT_TEXT,
                    "text_sha256": "0" * 64,
                    "text_version": "1",
                    "method": "sms_code",
                    "given_at": NOW,
                }
            },
            400,
            "consent_hash_mismatch",
        ),
        ({"phone": {"imei": "123456789012345", "brand": "x", "model": "y"}}, 400, None),
        ({"down_payment": "12000.00", "device_price": "12000.00"}, 400, None),
        ({"product_id": 10**9}, 400, "product_not_available"),
    ],
)
def test_loan_refusals_create_nothing(lender_a, product, change, status, code) -> None:
    from apps.collections.models import Loan
    from apps.customers.models import ConsentRecord

    _, key = api_key_for(lender_a)
    response = call(key, "post", "loans", loan_body(lender_a, product, **change))
    assert 400 <= response.status_code < 500, response.content
    if code:
        assert response.json()["code"] == code
    assert not Loan.objects.filter(lender=lender_a).exists()
    assert not ConsentRecord.objects.filter(lender=lender_a).exists()


def test_imei_of_an_open_loan_is_refused(lender_a, product, phone) -> None:
    from apps.collections.models import Loan

    _, key = api_key_for(lender_a)
    body = loan_body(lender_a, product)
    body["phone"]["imei"] = phone.imei
    response = call(key, "post", "loans", body)
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "imei_in_use"
    assert not Loan.objects.filter(external_id="LS-1001").exists()


def test_enrollment_code_only_for_a_phone_waiting_to_enrol(lender_a, phone) -> None:
    _, key = api_key_for(lender_a)
    response = call(key, "post", f"loans/{phone.loan_id}/enrollment-code")
    assert response.status_code == 409
    assert response.json()["code"] == "device_not_pending"


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_identical_creates_make_one_loan(lender_a) -> None:
    from apps.collections.models import Loan
    from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for

    restriction_policy_version_for(lender_a)
    body = loan_body(lender_a, LoanProductFactory(lender=lender_a))
    _, key = api_key_for(lender_a)

    def one(_: int) -> tuple[int, Any]:
        try:
            response = call(key, "post", "loans", body, idempotency_key="create-1")
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(one, range(5)))
    assert Loan.objects.filter(lender=lender_a).count() == 1
    assert {status for status, _ in answers} == {201}, answers
    assert len({answer["id"] for _, answer in answers}) == 1


def explicit(due: list[str], principal: list[str], interest: str = "0.00") -> list[dict[str, str]]:
    return [
        {"due_date": d, "principal": p, "interest": interest, "fee": "0.00"}
        for d, p in zip(due, principal, strict=True)
    ]


def test_loan_on_the_lenders_own_schedule(lender_a, product) -> None:
    from apps.collections.models import Installment, Loan

    _, key = api_key_for(lender_a)
    today = lender_local_date(lender=lender_a)
    due = [str(today + timedelta(days=d)) for d in (10, 40, 70)]
    body = loan_body(
        lender_a, product, schedule=explicit(due, ["4000.00", "3000.00", "3000.00"], "150.00")
    )
    response = call(key, "post", "loans", body)
    assert response.status_code == 201, response.content
    loan = Loan.objects.get(lender=lender_a)
    rows = list(
        Installment.objects.filter(loan=loan)
        .order_by("sequence")
        .values_list("sequence", "due_date", "principal_amount", "interest_amount")
    )
    assert [(r[0], str(r[1]), r[2], r[3]) for r in rows] == [
        (1, due[0], Decimal("4000.00"), Decimal("150.00")),
        (2, due[1], Decimal("3000.00"), Decimal("150.00")),
        (3, due[2], Decimal("3000.00"), Decimal("150.00")),
    ]
    assert loan.installments_count == 3


@pytest.mark.parametrize(
    ("days", "principal"),
    [
        ((10, 40, 70), ["4000.00", "3000.00", "2999.00"]),  # not the financed amount
        ((40, 10, 70), ["4000.00", "3000.00", "3000.00"]),  # out of order
        ((0, 40, 70), ["4000.00", "3000.00", "3000.00"]),  # due on the signing day
        ((10, 40, 70), ["4000.001", "3000.00", "2999.999"]),  # below the minor unit
        ((10, 40, 70), ["10000.00", "0.00", "0.00"]),  # installments owing nothing
    ],
)
def test_a_schedule_breaking_a_rule_is_refused(lender_a, product, days, principal) -> None:
    from apps.collections.models import Loan

    _, key = api_key_for(lender_a)
    today = lender_local_date(lender=lender_a)
    due = [str(today + timedelta(days=d)) for d in days]
    response = call(
        key, "post", "loans", loan_body(lender_a, product, schedule=explicit(due, principal))
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "schedule_invalid"
    assert not Loan.objects.filter(lender=lender_a).exists()
