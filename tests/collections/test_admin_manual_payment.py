from decimal import Decimal

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.collections.models import Payment
from apps.lenders.models import Membership
from tests.collections.factories import signed_loan

pytestmark = pytest.mark.django_db


def url(loan) -> str:
    return reverse("admin:collections_loan_record_payment", args=[loan.pk])


def test_an_agent_records_a_manual_payment_with_a_reason(
    lender_a, make_agent, verified_client
) -> None:
    agent = make_agent(lender_a, role=Membership.Role.AGENT)
    client = verified_client(agent)
    loan = signed_loan(lender_a)
    page = client.get(url(loan))
    assert page.status_code == 200
    key = page.context["form"]["idempotency_key"].value()
    form = {
        "amount": "500",
        "receipt_ref": "RCPT-77",
        "reason": "Paid cash at the branch",
        "idempotency_key": key,
    }
    assert client.post(url(loan), form).status_code == 302
    assert client.post(url(loan), form).status_code == 302  # a double submit
    payment = Payment.objects.get()
    assert (payment.amount, payment.channel, payment.receipt_ref) == (
        Decimal(500),
        "manual",
        "RCPT-77",
    )
    event = AuditEvent.objects.get(action="collections.payment.received")
    assert (event.actor_type, event.actor_id, event.reason) == (
        "agent",
        str(agent.pk),
        "Paid cash at the branch",
    )
    change = client.get(reverse("admin:collections_loan_change", args=[loan.pk]))
    assert b"RCPT-77" in change.content
    assert b"record-payment" in change.content


def test_reason_is_required_and_bad_amounts_are_explained(
    lender_a, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a))
    loan = signed_loan(lender_a)
    response = client.post(url(loan), {"amount": "500", "reason": "", "idempotency_key": "k1"})
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    response = client.post(url(loan), {"amount": "10.005", "reason": "x", "idempotency_key": "k2"})
    assert b"more decimal places" in response.content
    assert not Payment.objects.exists()


def test_another_lenders_loan_is_not_found(lender_a, lender_b, make_agent, verified_client) -> None:
    client = verified_client(make_agent(lender_a))
    other = signed_loan(lender_b)
    assert client.get(url(other)).status_code == 404
    response = client.post(url(other), {"amount": "5", "reason": "x", "idempotency_key": "k"})
    assert response.status_code == 404
    assert not Payment.objects.exists()
