"""Plays the payment provider: builds and signs webhook deliveries."""

import json
import time
from typing import Any

from apps.integrations.payments.signing import sign, webhook_secret_for
from apps.lenders.models import Lender

URL = "/api/payments/v1/webhooks/demo/"


def event(
    loan_ref: str,
    amount: str,
    reference: str,
    *,
    event_id: str | None = None,
    currency: str = "KES",
    type_: str = "payment.succeeded",
    **data: Any,
) -> bytes:
    body = {
        "id": event_id or f"evt-{reference}",
        "type": type_,
        "data": {
            "loan": loan_ref,
            "amount": amount,
            "currency": currency,
            "reference": reference,
            **data,
        },
    }
    return json.dumps(body).encode()


def headers(
    lender: Lender, body: bytes, *, timestamp: int | None = None, provider: str = "demo"
) -> dict[str, str]:
    secret = webhook_secret_for(lender_slug=lender.slug, provider=provider)
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "HTTP_X_LENDER": lender.slug,
        "HTTP_X_SIGNATURE": sign(secret=secret, body=body, timestamp=ts),
    }


def deliver(client, lender: Lender, body: bytes, **kwargs: Any):
    return client.post(
        URL, data=body, content_type="application/json", **headers(lender, body, **kwargs)
    )
