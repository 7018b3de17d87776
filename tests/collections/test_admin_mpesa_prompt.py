"""An agent on the phone with a customer sends an M-Pesa prompt from the loan's page."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.collections.models import PaymentAttempt
from tests.collections.daraja import paybill_for
from tests.collections.factories import signed_loan

pytestmark = pytest.mark.django_db


def test_an_agent_sends_a_prompt_to_the_number_on_file_and_it_is_on_the_record(
    lender_a, daraja, make_agent, verified_client
) -> None:
    paybill_for(lender_a)
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    agent = make_agent(lender_a)
    client = verified_client(agent)
    page = client.get(reverse("admin:collections_loan_change", args=[loan.pk])).content.decode()
    assert 'id="mpesa-prompt"' in page
    url = reverse("admin:collections_loan_mpesa_prompt", args=[loan.pk])
    form = client.get(url).content.decode()
    assert loan.customer.phone in form  # offered, to change if the customer pays from another
    answer = client.post(url, {"phone": loan.customer.phone})
    assert answer.status_code == 302
    attempt = PaymentAttempt.objects.get()
    assert daraja.pushes[attempt.attempt_ref].phone == loan.customer.phone.removeprefix("+")
    started = AuditEvent.objects.get(action="collections.payment_attempt.started")
    assert started.actor_id == str(agent.pk)
    assert attempt.started_by == "agent"


def test_a_lender_without_m_pesa_shows_no_prompt_and_refuses_one(
    lender_a, make_agent, verified_client
) -> None:
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    client = verified_client(make_agent(lender_a))
    page = client.get(reverse("admin:collections_loan_change", args=[loan.pk])).content.decode()
    assert 'id="mpesa-prompt"' not in page
    answer = client.post(
        reverse("admin:collections_loan_mpesa_prompt", args=[loan.pk]),
        {"phone": loan.customer.phone},
    )
    assert answer.status_code == 200
    assert "takes no payments through this provider" in answer.content.decode()
    assert PaymentAttempt.objects.count() == 0


def test_another_lenders_agent_cannot_prompt_this_loan(
    lender_a, lender_b, daraja, make_agent, verified_client
) -> None:
    paybill_for(lender_a)
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    client = verified_client(make_agent(lender_b))
    answer = client.post(
        reverse("admin:collections_loan_mpesa_prompt", args=[loan.pk]),
        {"phone": loan.customer.phone},
    )
    assert answer.status_code in (302, 404)
    assert PaymentAttempt.objects.count() == 0
    assert daraja.pushes == {}
