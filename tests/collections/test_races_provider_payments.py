"""A provider's callback delivered five times at once, and a callback racing the
reconciliation's status query for the same payment: one payment each time."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditChain
from apps.audit.selectors import audit_chain_verify
from apps.collections.models import Payment, PaymentAttempt
from apps.collections.services import payment_attempt_reconcile
from apps.core.actor import Actor
from tests.collections.daraja import call, paybill_for, push_started
from tests.collections.factories import signed_loan
from tests.waiting import run_at_once


@pytest.fixture
def paid_push(lender_a, daraja):
    paybill_for(lender_a)
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    return attempt, urlsplit(push.callback_url).path, daraja.stk_callback_body(push)


@pytest.mark.django_db(transaction=True)
def test_five_deliveries_of_one_stk_callback_at_once_pay_once(lender_a, paid_push) -> None:
    attempt, url, body = paid_push
    answers = run_at_once(*[lambda: call(Client(), url, body).status_code for _ in range(5)])
    assert answers == [200] * 5
    assert Payment.objects.count() == 1
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == "paid"
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None


@pytest.mark.django_db(transaction=True)
def test_a_callback_racing_the_status_query_pays_once(lender_a, paid_push) -> None:
    attempt, url, body = paid_push
    later = timezone.now() + timedelta(minutes=5)
    results = run_at_once(
        lambda: call(Client(), url, body).status_code,
        lambda: payment_attempt_reconcile(attempt_id=attempt.pk, actor=Actor.system(), now=later),
    )
    assert sorted(map(str, results)) == ["200", "paid"]
    assert Payment.objects.count() == 1
    assert PaymentAttempt.objects.get(pk=attempt.pk).payment_id == Payment.objects.get().pk
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None
