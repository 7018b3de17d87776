"""A lender with an M-Pesa paybill, against the loopback Daraja: the fixture and the calls a
test makes as Safaricom would (to the callback paths the product registers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from apps.collections.models import Loan
from apps.core.actor import Actor
from apps.integrations.payments import mpesa
from apps.integrations.payments.registry import callback_url
from apps.integrations.services import provider_account_save
from apps.lenders.models import Lender
from tools.fakes.daraja import FakeDaraja

SHORTCODE = "174379"
KEY, SECRET = "consumer-key-demo-1", "consumer-secret-demo-1"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
PHONE = "+254712345678"


@pytest.fixture
def daraja(settings) -> Iterator[FakeDaraja]:
    fake = FakeDaraja()
    fake.app(key=KEY, secret=SECRET, passkey=PASSKEY, shortcode=SHORTCODE)
    settings.MPESA_API_BASE = fake.start()
    mpesa._tokens.clear()
    yield fake
    fake.stop()
    mpesa._tokens.clear()


def paybill_for(lender: Lender) -> None:
    provider_account_save(
        lender_id=lender.pk,
        provider="mpesa",
        enabled=True,
        settings={"shortcode": SHORTCODE, "environment": "sandbox"},
        secrets={"consumer_key": KEY, "consumer_secret": SECRET, "passkey": PASSKEY},
        actor=Actor.system(),
    )


def path(lender: Lender, route: str) -> str:
    return urlsplit(callback_url(provider="mpesa", lender_slug=lender.slug, route=route)).path


def call(client: Client, url_path: str, body: dict[str, Any], *, ip: str = "127.0.0.1"):
    return client.post(url_path, body, content_type="application/json", REMOTE_ADDR=ip)


def push_started(loan: Loan, *, phone: str = PHONE):
    """A customer's M-Pesa prompt for what ``loan`` owes now, through the real service."""
    from apps.collections.services import payment_attempt_start
    from apps.core.actor import ActorType

    return payment_attempt_start(
        loan_id=loan.pk,
        lender_id=loan.lender_id,
        provider="mpesa",
        actor=Actor(type=ActorType.CUSTOMER, id=str(loan.customer_id)),
        phone=phone,
    )
