"""A lender with a Stripe account, against the loopback Stripe: the fixture and the webhook
deliveries a test makes as Stripe would (signed with the endpoint's secret)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.collections.models import Loan
from apps.core.actor import Actor
from apps.integrations.services import provider_account_save
from apps.lenders.models import Lender
from tools.fakes.stripe import FakeStripe

SECRET_KEY = "sk_test_51LenderDemo000000AbCdEfGh"
WEBHOOK_SECRET = "whsec_LenderDemo00000000000000001"


@pytest.fixture
def stripe_fake(settings) -> Iterator[FakeStripe]:
    fake = FakeStripe([SECRET_KEY])
    settings.STRIPE_API_BASE = fake.start()
    yield fake
    fake.stop()


def stripe_for(lender: Lender, secret_key: str = SECRET_KEY) -> None:
    provider_account_save(
        lender_id=lender.pk,
        provider="stripe",
        enabled=True,
        settings={},
        secrets={"secret_key": secret_key, "webhook_secret": WEBHOOK_SECRET},
        actor=Actor.system(),
    )


def webhook_url(lender: Lender) -> str:
    return reverse(
        "payments-api:provider", kwargs={"provider": "stripe", "lender_slug": lender.slug}
    )


def deliver(
    client: Client,
    fake: FakeStripe,
    lender: Lender,
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
):
    body, headers = fake.signed(event, secret, timestamp)
    return client.post(
        webhook_url(lender),
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=headers["stripe-signature"],
    )


def checkout_started(loan: Loan):
    """A customer's Stripe checkout for what ``loan`` owes now, through the real service."""
    from apps.collections.services import payment_attempt_start
    from apps.core.actor import ActorType

    return payment_attempt_start(
        loan_id=loan.pk,
        lender_id=loan.lender_id,
        provider="stripe",
        actor=Actor(type=ActorType.CUSTOMER, id=str(loan.customer_id)),
        return_url=f"http://testserver/my/{loan.lender.slug}/",
    )
