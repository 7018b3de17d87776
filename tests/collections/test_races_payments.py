"""Five identical payments, or five identical webhook deliveries, at the same moment: one
payment."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from apps.audit.models import AuditChain
from apps.audit.selectors import audit_chain_verify
from apps.collections.models import Payment, WebhookEvent
from apps.collections.selectors import loan_outstanding
from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from tests.collections.factories import signed_loan
from tests.collections.webhooks import URL, event, headers


@pytest.mark.django_db(transaction=True)
def test_five_identical_payments_at_once_make_one_payment(lender_a) -> None:
    loan = signed_loan(lender_a, price="3100", down="500", installments=3)
    before = loan_outstanding(loan=loan).amount
    barrier = threading.Barrier(5)
    outcomes, errors = [], []

    def deliver() -> None:
        try:
            barrier.wait()
            outcomes.append(
                payment_record(
                    loan_id=loan.pk,
                    amount=Money(Decimal(500), "KES"),
                    channel="provider",
                    provider="demo",
                    provider_ref="evt-1",
                    received_at=datetime(2026, 1, 1, tzinfo=UTC),
                    actor=Actor.system(),
                )
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(o.created for o in outcomes) == [False, False, False, False, True]
    assert Payment.objects.count() == 1
    assert loan_outstanding(loan=loan).amount == before - 500
    assert audit_chain_verify(chain=AuditChain.objects.get(lender=lender_a)) is None


@pytest.mark.django_db(transaction=True)
def test_five_identical_deliveries_at_the_same_moment_apply_once(lender_a) -> None:
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    body = event(loan.reference, "250.00", "MP-1")
    hdrs = headers(lender_a, body)
    barrier = threading.Barrier(5)
    statuses: list[tuple[int, str]] = []

    def post() -> None:
        barrier.wait()
        response = Client().post(URL, data=body, content_type="application/json", **hdrs)
        statuses.append((response.status_code, response.json().get("status", "")))
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [(200, "applied")] + [(200, "duplicate")] * 4
    assert (Payment.objects.count(), WebhookEvent.objects.count()) == (1, 1)
