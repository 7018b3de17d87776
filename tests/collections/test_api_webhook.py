import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import Payment, PaymentReversal, WebhookEvent
from apps.collections.selectors import loan_outstanding
from tests.collections.factories import signed_loan
from tests.collections.webhooks import URL, deliver, event, headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(lender_a):
    return signed_loan(lender_a, price="3500", down="500", installments=3)


def rejections(problem: str) -> int:
    return AuditEvent.objects.filter(
        action="collections.webhook.rejected", data__problem=problem
    ).count()


def test_a_signed_payment_is_applied_and_its_raw_event_stored(client, lender_a, loan) -> None:
    before = loan_outstanding(loan=loan).amount
    body = event(loan.reference, "250.00", "MP-1")
    response = deliver(client, lender_a, body)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    payment = Payment.objects.get()
    assert (payment.amount, payment.provider, payment.provider_ref, payment.channel) == (
        Decimal(250),
        "demo",
        "MP-1",
        "provider",
    )
    stored = WebhookEvent.objects.get()
    assert (stored.body.encode(), stored.payment) == (body, payment)
    assert loan_outstanding(loan=loan).amount == before - 250


def test_a_replayed_event_changes_nothing(client, lender_a, loan) -> None:
    body = event(loan.reference, "250.00", "MP-1")
    first, second = deliver(client, lender_a, body), deliver(client, lender_a, body)
    assert (first.json()["status"], second.json()["status"]) == ("applied", "duplicate")
    assert second.json()["payment_id"] == first.json()["payment_id"]
    assert (Payment.objects.count(), WebhookEvent.objects.count()) == (1, 1)


def test_the_same_event_id_with_another_body_is_a_conflict(client, lender_a, loan) -> None:
    deliver(client, lender_a, event(loan.reference, "250.00", "MP-1", event_id="evt-9"))
    response = deliver(client, lender_a, event(loan.reference, "999.00", "MP-2", event_id="evt-9"))
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert Payment.objects.count() == 1
    assert rejections("idempotency_conflict") == 1


@pytest.mark.parametrize(
    ("tamper", "status", "problem"),
    [
        ("bad_signature", 401, "signature_invalid"),
        ("one_byte", 401, "signature_invalid"),
        ("stale", 401, "timestamp_stale"),
        ("future", 401, "timestamp_stale"),
        ("unknown_lender", 401, "signature_invalid"),
        ("no_signature", 401, "signature_invalid"),
    ],
)
def test_bad_deliveries_are_refused_audited_and_store_nothing(
    client, lender_a, loan, tamper, status, problem
) -> None:
    body = event(loan.reference, "250.00", "MP-1")
    hdrs = headers(lender_a, body)
    if tamper == "bad_signature":
        hdrs["HTTP_X_SIGNATURE"] = hdrs["HTTP_X_SIGNATURE"][:-4] + "0000"
    elif tamper == "one_byte":
        body = body.replace(b"250.00", b"950.00")
    elif tamper == "stale":
        hdrs = headers(lender_a, body, timestamp=int(time.time()) - 310)
    elif tamper == "future":
        hdrs = headers(lender_a, body, timestamp=int(time.time()) + 310)
    elif tamper == "unknown_lender":
        hdrs["HTTP_X_LENDER"] = "nobody"
    elif tamper == "no_signature":
        del hdrs["HTTP_X_SIGNATURE"]
    response = client.post(URL, data=body, content_type="application/json", **hdrs)
    assert response.status_code == status
    assert response.json()["code"] == problem
    assert (Payment.objects.count(), WebhookEvent.objects.count()) == (0, 0)
    assert rejections(problem) == 1


def test_a_signature_from_another_lenders_secret_is_refused(
    client, lender_a, lender_b, loan
) -> None:
    body = event(loan.reference, "250.00", "MP-1")
    hdrs = headers(lender_b, body)
    hdrs["HTTP_X_LENDER"] = lender_a.slug
    assert client.post(URL, data=body, content_type="application/json", **hdrs).status_code == 401
    assert not Payment.objects.exists()


def test_an_unknown_loan_is_refused_and_nothing_is_stored(client, lender_a, lender_b, loan) -> None:
    other = signed_loan(lender_b)
    response = deliver(
        client, lender_a, event(other.reference, "250.00", "MP-1")
    )  # another lender's loan
    assert response.status_code == 404
    assert response.json()["code"] == "loan_not_found"
    assert (Payment.objects.count(), WebhookEvent.objects.count()) == (0, 0)
    assert rejections("loan_not_found") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", None),
        (b'{"id": "e1", "type": "payment.succeeded", "data": {"loan": "SC-X"}}', "amount"),
        (b'{"id": "e1", "type": "payment.teleported", "data": {}}', "type"),
        (b"[1, 2]", "id"),
        (b"[" * 50_000, None),  # nested past the recursion limit, inside the size limit
    ],
)
def test_malformed_events_get_400(client, lender_a, loan, body, field) -> None:
    response = deliver(client, lender_a, body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    if field:
        assert field in str(response.json()["extra"]["fields"])
    assert not WebhookEvent.objects.exists()


def test_oversized_bodies_and_unknown_providers(client, lender_a, loan, settings) -> None:
    settings.PAYMENTS_WEBHOOK_MAX_BYTES = 1024
    big = event(loan.reference, "1.00", "MP-1", note="x" * 2000)
    assert deliver(client, lender_a, big).status_code == 413
    body = event(loan.reference, "1.00", "MP-1")
    response = client.post(
        "/api/payments/v1/webhooks/acme/",
        data=body,
        content_type="application/json",
        **headers(lender_a, body, provider="acme"),
    )
    assert response.status_code == 404
    assert not Payment.objects.exists()
    assert (rejections("payload_too_large"), rejections("unknown_provider")) == (1, 1)


def test_a_reversal_event_before_its_payment(client, lender_a, loan) -> None:
    before = loan_outstanding(loan=loan).amount
    rev = event(
        loan.reference, "100.00", "CB-1", type_="payment.reversed", reverses="MP-1", kind="refund"
    )
    assert deliver(client, lender_a, rev).json()["status"] == "applied"
    assert deliver(client, lender_a, event(loan.reference, "300.00", "MP-1")).status_code == 200
    assert PaymentReversal.objects.get().kind == "refund"
    assert loan_outstanding(loan=loan).amount == before - 200


def test_an_amount_finer_than_the_currency_is_refused_and_audited(client, lender_a, loan) -> None:
    response = deliver(client, lender_a, event(loan.reference, "10.005", "MP-1"))
    assert response.status_code == 400
    assert response.json()["code"] == "amount_not_in_minor_units"
    assert not Payment.objects.exists()
    assert rejections("amount_not_in_minor_units") == 1


def test_unsigned_refusals_go_on_the_platform_chain_not_the_lenders(client, lender_a, loan) -> None:
    body = event(loan.reference, "250.00", "MP-1")
    hdrs = headers(lender_a, body)
    hdrs["HTTP_X_SIGNATURE"] = "t=1,v1=é"  # not even hex
    response = client.post(URL, data=body, content_type="application/json", **hdrs)
    assert response.status_code == 401
    event_ = AuditEvent.objects.get(action="collections.webhook.rejected")
    assert (event_.lender_id, event_.data["lender"], event_.data["verified"]) == (
        None,
        lender_a.slug,
        False,
    )


def test_a_payment_whose_early_reversal_named_another_loan_is_held(client, lender_a, loan) -> None:
    other = signed_loan(lender_a, price="3500", down="500", installments=3)
    rev = event(other.reference, "100.00", "CB-1", type_="payment.reversed", reverses="MP-1")
    assert deliver(client, lender_a, rev).status_code == 200
    response = deliver(client, lender_a, event(loan.reference, "300.00", "MP-1"))
    assert response.status_code == 409
    assert not Payment.objects.exists()


def test_a_payment_dated_in_the_future_is_refused(client, lender_a, loan) -> None:
    body = event(loan.reference, "10.00", "MP-1", received_at="2999-01-01T00:00:00Z")
    assert deliver(client, lender_a, body).status_code == 400


NOT_PLAIN = {
    "arabic_indic": "\u0661\u0660\u0660",  # 100 in Arabic-Indic digits
    "devanagari": "\u0967\u0966\u0966",
    "fullwidth": "\uff11\uff10\uff10",
    "exponent": "1e9",
    "upper_exponent": "1E2",
    "underscore": "1_000",
    "space": " 100",
    "plus": "+100",
    "no_integer_part": ".5",
    "no_fraction": "100.",
    "infinity": "Infinity",
    "nan": "NaN",
    "json_int": 100,
    "json_float": 100.5,
}


@pytest.mark.parametrize("amount", list(NOT_PLAIN.values()), ids=list(NOT_PLAIN))
def test_an_amount_not_in_plain_ascii_digits_is_refused_with_a_clear_400(
    client, lender_a, loan, amount
) -> None:
    response = deliver(client, lender_a, event(loan.reference, amount, "MP-1"))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "ASCII digits" in " ".join(body["extra"]["fields"]["amount"])
    assert not Payment.objects.exists()
    assert rejections("invalid") == 1


@pytest.mark.parametrize("amount", ["100", "100.5", "0100.50"])
def test_an_amount_in_plain_ascii_digits_is_applied(client, lender_a, loan, amount) -> None:
    response = deliver(client, lender_a, event(loan.reference, amount, "MP-1"))
    assert response.status_code == 200, response.content
    assert Payment.objects.get().amount == Decimal(amount)


def test_a_payment_received_beyond_the_tolerance_into_the_future_is_refused_with_a_clear_400(
    client, lender_a, loan, settings
) -> None:
    settings.PAYMENTS_WEBHOOK_TOLERANCE_SECONDS = 60
    ahead = (timezone.now() + timedelta(seconds=120)).isoformat()
    response = deliver(client, lender_a, event(loan.reference, "10.00", "MP-1", received_at=ahead))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "future" in response.json()["extra"]["fields"]["received_at"][0]
    assert not Payment.objects.exists()
    within = (timezone.now() + timedelta(seconds=30)).isoformat()  # a provider's clock a bit fast
    response = deliver(client, lender_a, event(loan.reference, "10.00", "MP-2", received_at=within))
    assert response.status_code == 200


@pytest.mark.parametrize("type_", ["payment.succeeded", "payment.reversed"])
def test_money_received_before_the_loan_was_signed_is_refused_with_a_clear_400(
    client, lender_a, loan, type_
) -> None:
    before = (loan.signed_at - timedelta(minutes=1)).isoformat()
    response = deliver(
        client,
        lender_a,
        event(loan.reference, "10.00", "MP-1", type_=type_, received_at=before, reverses="MP-0"),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "received_before_signing"
    assert loan.reference in response.json()["message"]
    assert (Payment.objects.count(), PaymentReversal.objects.count()) == (0, 0)
    assert not WebhookEvent.objects.exists()
    refused = AuditEvent.objects.get(action="collections.webhook.rejected")
    assert (refused.lender_id, refused.data["problem"]) == (lender_a.pk, "received_before_signing")
    at_signing = loan.signed_at.isoformat()
    response = deliver(
        client,
        lender_a,
        event(
            loan.reference, "10.00", "MP-2", type_=type_, received_at=at_signing, reverses="MP-0"
        ),
    )
    assert response.status_code == 200
