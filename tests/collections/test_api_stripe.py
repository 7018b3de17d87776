"""Stripe end to end against the loopback Stripe: a checkout started for a loan, paid by card
or by an OXXO voucher settled days later, refunds and disputes as reversals, and every
webhook that must not move money."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import Payment, PaymentAttempt, PaymentReversal, WebhookEvent
from apps.collections.selectors import loan_outstanding
from apps.collections.services import payment_attempt_reconcile
from apps.core.actor import Actor
from tests.collections.factories import signed_loan
from tests.collections.stripe import checkout_started, deliver, stripe_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def card_loan(lender_a, stripe_fake):
    stripe_for(lender_a)
    return signed_loan(lender_a, price="3500", down="500", installments=3)


@pytest.fixture
def peso_loan(lender_b, stripe_fake):
    stripe_for(lender_b)
    return signed_loan(lender_b, price="3500", down="500", installments=3)


def refused(problem: str) -> int:
    return AuditEvent.objects.filter(
        action="collections.webhook.rejected", data__problem=problem
    ).count()


def test_a_card_payment_applies_once_with_the_payment_intent_as_reference(
    client, stripe_fake, card_loan
) -> None:
    attempt = checkout_started(card_loan)
    assert attempt.redirect_url.startswith(stripe_fake.base)  # the customer goes there
    before = loan_outstanding(loan=card_loan).amount
    events = stripe_fake.pay_card(attempt.attempt_ref)
    answers = [deliver(client, stripe_fake, card_loan.lender, e) for e in events]
    assert [a.status_code for a in answers] == [200] * len(events)
    payment = Payment.objects.get()
    intent = next(e for e in events if e["type"] == "payment_intent.succeeded")["data"]["object"]
    assert (payment.provider, payment.provider_ref, payment.amount) == (
        "stripe",
        intent["id"],
        attempt.amount,
    )
    attempt.refresh_from_db()
    assert (attempt.status, attempt.payment) == ("paid", payment)
    assert loan_outstanding(loan=card_loan).amount == before - attempt.amount
    # Stripe delivers again (it does, until it has a 2xx): nothing more is paid
    assert deliver(client, stripe_fake, card_loan.lender, events[-1]).json()["status"] == (
        "duplicate"
    )
    assert Payment.objects.count() == 1


def test_an_oxxo_voucher_waits_then_applies_when_the_store_settles_it(
    client, stripe_fake, peso_loan
) -> None:
    attempt = checkout_started(peso_loan)
    for event in stripe_fake.issue_oxxo(attempt.attempt_ref):
        assert deliver(client, stripe_fake, peso_loan.lender, event).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "pending"
    assert attempt.voucher_number
    assert attempt.voucher_expires_at > timezone.now() + timedelta(days=2)
    assert Payment.objects.count() == 0
    for event in stripe_fake.settle_oxxo(attempt.attempt_ref):
        assert deliver(client, stripe_fake, peso_loan.lender, event).status_code == 200
    attempt.refresh_from_db()
    assert attempt.status == "paid"
    assert Payment.objects.get().amount == attempt.amount


def test_refunds_and_disputes_arrive_as_reversals(client, stripe_fake, card_loan) -> None:
    attempt = checkout_started(card_loan)
    for event in stripe_fake.pay_card(attempt.attempt_ref):
        deliver(client, stripe_fake, card_loan.lender, event)
    payment = Payment.objects.get()
    for event in stripe_fake.refund(payment.provider_ref, 10000):  # 100.00 of it
        assert deliver(client, stripe_fake, card_loan.lender, event).status_code == 200
    left_in_cents = int((payment.amount - 100) * 100)  # the bank disputes what is left
    for event in stripe_fake.dispute(payment.provider_ref, left_in_cents):
        assert deliver(client, stripe_fake, card_loan.lender, event).status_code == 200
    reversals = sorted(PaymentReversal.objects.values_list("kind", "amount"))
    assert reversals == [("chargeback", payment.amount - 100), ("refund", Decimal(100))]
    assert all(
        r.payment_provider_ref == payment.provider_ref for r in PaymentReversal.objects.all()
    )


@pytest.mark.parametrize(
    ("tamper", "status", "problem"),
    [
        ("wrong_secret", 401, "signature_invalid"),
        ("stale", 401, "timestamp_stale"),
        ("tampered_body", 401, "signature_invalid"),
    ],
)
def test_bad_webhooks_are_refused_audited_and_store_nothing(
    client, stripe_fake, card_loan, tamper, status, problem
) -> None:
    attempt = checkout_started(card_loan)
    event = next(
        e
        for e in stripe_fake.pay_card(attempt.attempt_ref)
        if e["type"].startswith("payment_i") and e["type"].endswith("succeeded")
    )
    if tamper == "wrong_secret":
        response = deliver(client, stripe_fake, card_loan.lender, event, secret="whsec_other0000")
    elif tamper == "stale":
        response = deliver(
            client, stripe_fake, card_loan.lender, event, timestamp=int(time.time()) - 301
        )
    else:
        body, headers = stripe_fake.signed(event, "whsec_LenderDemo00000000000000001")
        response = client.post(
            f"/api/payments/v1/providers/stripe/{card_loan.lender.slug}/",
            data=body.replace(b'"amount_received"', b'"amount_receivedX"'),
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=headers["stripe-signature"],
        )
    assert response.status_code == status
    assert response.json()["code"] == problem
    assert Payment.objects.count() == WebhookEvent.objects.count() == 0
    assert refused(problem) == 1


def test_a_payment_for_a_checkout_we_never_started_is_acknowledged_and_not_applied(
    client, stripe_fake, card_loan
) -> None:
    attempt = checkout_started(card_loan)
    events = stripe_fake.pay_card(attempt.attempt_ref)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(attempt_ref="cs_test_other")
    for event in events:
        event["data"]["object"].setdefault("metadata", {})["attempt"] = (
            "00000000-0000-0000-0000-000000000000"
        )
    answers = [deliver(client, stripe_fake, card_loan.lender, e) for e in events]
    # answered 2xx (not ours to apply: Stripe must not retry it for days), nothing applied
    assert {a.status_code for a in answers} == {200}
    assert "unknown_attempt" in {a.json().get("code") for a in answers}
    assert Payment.objects.count() == 0
    assert refused("unknown_attempt") >= 1


def test_a_checkout_paid_with_its_webhooks_lost_is_found_by_the_status_query(
    client, stripe_fake, card_loan
) -> None:
    attempt = checkout_started(card_loan)
    events = stripe_fake.pay_card(attempt.attempt_ref)  # nobody delivers them
    status = payment_attempt_reconcile(
        attempt_id=attempt.pk, actor=Actor.system(), now=timezone.now() + timedelta(minutes=5)
    )
    assert status == "paid"
    payment = Payment.objects.get()
    for event in events:  # then they turn up after all
        deliver(client, stripe_fake, card_loan.lender, event)
    assert Payment.objects.get() == payment
