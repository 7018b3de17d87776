"""The webhooks' statements: the claim's plan, and two senders racing over one loan's backlog."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from apps.integrations.models import WebhookDelivery
from apps.integrations.services import webhook_endpoint_create
from apps.integrations.services.webhooks import webhooks_project, webhooks_send
from apps.integrations.sql import CLAIM
from tests.collections.factories import signed_loan
from tests.explain import plan_of


@pytest.mark.django_db
def test_the_claim_reads_the_backlog_and_the_waiting_by_their_indexes() -> None:
    now = timezone.now()
    with plan_of(CLAIM, {"now": now, "batch": 500, "lease": now}) as plan:
        assert "webhook_delivery_due" in plan
        assert "webhook_delivery_waiting" in plan


@pytest.mark.django_db(transaction=True)
def test_two_senders_deliver_one_loans_backlog_once_and_in_order(lender_a, receiver) -> None:
    webhook_endpoint_create(lender_id=lender_a.pk, url=receiver.url, actor=Actor.system())
    receiver.answers = [503] * 1000  # down while the loan's events pile up
    loan = signed_loan(lender_a, price="30000", down="3000")
    for n in range(12):
        payment_record(
            loan_id=loan.pk,
            amount=Money(Decimal(10), loan.currency),
            channel="provider",
            provider="demo",
            provider_ref=f"p-{n}",
            received_at=timezone.now(),
            actor=Actor.system(),
        )
    webhooks_project()
    receiver.answers = []  # up again, slowly: the two senders' posts overlap
    receiver.delay = 0.02
    later = timezone.now() + timedelta(hours=1)
    barrier, errors = threading.Barrier(2), []

    def sender() -> None:
        try:
            barrier.wait()
            for _ in range(100):
                webhooks_send(now=later, batch=3)
                if not WebhookDelivery.objects.filter(status="pending").exists():
                    return
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    taken = [int(p["id"].removeprefix("evt_")) for p in receiver.taken()]
    assert len(taken) == 13 == WebhookDelivery.objects.filter(status="delivered").count()
    assert taken == sorted(set(taken))  # each once, in the chain's order
