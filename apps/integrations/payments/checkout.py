"""The pay-link seam: where a customer is sent to pay, and the demo provider behind it.

``checkout_url`` gives the address of the provider's checkout for an amount
owed on a loan. A real provider would create a checkout session through its
API; the demo provider (``PAYMENTS_FAKE_CHECKOUT``, never in production) is a
page of its own here that, when the customer presses Pay, calls our webhook
over HTTP exactly as a provider does: signed, through the real webhook path.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import requests
from django.conf import settings
from django.core import signing
from django.urls import reverse

from apps.core.money import Money, quantize
from apps.integrations.payments.signing import (
    LENDER_HEADER,
    SIGNATURE_HEADER,
    sign,
    webhook_secret_for,
)

DEMO_PROVIDER = "demo"
_SALT = "payments.fake-checkout"
CHECKOUT_MAX_AGE = 30 * 60


class CheckoutUnavailable(Exception):
    """No provider checkout is configured."""


@dataclass(frozen=True, slots=True)
class Checkout:
    lender_slug: str
    lender_name: str
    loan_reference: str
    amount: Money
    return_url: str


def checkout_url(*, checkout: Checkout) -> str:
    """The provider's checkout page for ``checkout``; the customer comes back to its return URL."""
    if not settings.PAYMENTS_FAKE_CHECKOUT:
        raise CheckoutUnavailable()
    token = signing.dumps(
        {
            "lender": checkout.lender_slug,
            "name": checkout.lender_name,
            "loan": checkout.loan_reference,
            "amount": str(quantize(checkout.amount.amount, checkout.amount.currency)),
            "currency": checkout.amount.currency,
            "back": checkout.return_url,
        },
        salt=_SALT,
    )
    return reverse("fake-checkout:page", args=[token])


def checkout_read(token: str) -> Checkout:
    """The checkout a demo link stands for; ``signing.BadSignature`` if forged or too old."""
    data = signing.loads(token, salt=_SALT, max_age=CHECKOUT_MAX_AGE)
    return Checkout(
        lender_slug=data["lender"],
        lender_name=data["name"],
        loan_reference=data["loan"],
        amount=Money(Decimal(data["amount"]), data["currency"]),
        return_url=data["back"],
    )


def demo_provider_pay(*, checkout: Checkout, webhook_url: str) -> requests.Response:
    """Play the provider once the customer has paid: POST the signed ``payment.succeeded``."""
    reference = f"demo-{uuid.uuid4().hex[:16]}"
    body = json.dumps(
        {
            "id": f"evt-{reference}",
            "type": "payment.succeeded",
            "data": {
                "loan": checkout.loan_reference,
                "amount": str(checkout.amount.amount),
                "currency": checkout.amount.currency,
                "reference": reference,
            },
        }
    ).encode()
    secret = webhook_secret_for(lender_slug=checkout.lender_slug, provider=DEMO_PROVIDER)
    headers = {
        "Content-Type": "application/json",
        LENDER_HEADER: checkout.lender_slug,
        SIGNATURE_HEADER: sign(secret=secret, body=body, timestamp=int(time.time())),
    }
    return requests.post(webhook_url, data=body, headers=headers, timeout=10)
