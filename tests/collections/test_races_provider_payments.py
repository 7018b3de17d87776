"""A provider's callback delivered five times at once, and a callback racing the
reconciliation's status query for the same payment: one payment each time."""

import threading
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditChain
from apps.audit.selectors import audit_chain_verify
from apps.collections.models import Payment, PaymentAttempt
from apps.collections.services import payment_attempt_reconcile, payment_attempt_start
from apps.core.actor import Actor, ActorType
from tests.collections.daraja import PHONE, call, daraja, paybill_for
from tests.collections.factories import signed_loan

__all__ = ["daraja"]  # the fixture, used by name


def at_once(*calls: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(calls))
    results: list[object] = []

    def run(target: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # kept: the test asserts there were none
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def paid_push(lender_a, daraja):
    paybill_for(lender_a)
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    attempt = payment_attempt_start(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        provider="mpesa",
        actor=Actor(type=ActorType.CUSTOMER, id="1"),
        phone=PHONE,
    )
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    return attempt, urlsplit(push.callback_url).path, daraja.stk_callback_body(push)


@pytest.mark.django_db(transaction=True)
def test_five_deliveries_of_one_stk_callback_at_once_pay_once(lender_a, paid_push) -> None:
    attempt, url, body = paid_push
    answers = at_once(*[lambda: call(Client(), url, body).status_code for _ in range(5)])
    assert answers == [200] * 5
    assert Payment.objects.count() == 1
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == "paid"
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None


@pytest.mark.django_db(transaction=True)
def test_a_callback_racing_the_status_query_pays_once(lender_a, paid_push) -> None:
    attempt, url, body = paid_push
    later = timezone.now() + timedelta(minutes=5)
    results = at_once(
        lambda: call(Client(), url, body).status_code,
        lambda: payment_attempt_reconcile(attempt_id=attempt.pk, actor=Actor.system(), now=later),
    )
    assert sorted(map(str, results)) == ["200", "paid"]
    assert Payment.objects.count() == 1
    assert PaymentAttempt.objects.get(pk=attempt.pk).payment_id == Payment.objects.get().pk
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None
