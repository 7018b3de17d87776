"""The generic signed webhook: any provider that can send our documented event, signed with
HMAC-SHA256 (``apps.integrations.payments.signing``), and the demo provider behind the demo's
checkout page.

``X-Lender: <slug>`` and ``X-Signature: t=<unix>,v1=<hex>`` over ``<t>.<raw body>`` with the
lender's secret for the provider. The body:
``{"id", "type": "payment.succeeded" | "payment.reversed", "data": {"loan", "amount",
"currency", "reference", "received_at"?, "reverses"?, "kind"?}}``. The API view checks the
data's fields one by one for its answer; ``parse_callback`` reads the same body into the
seam's event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from apps.core.money import Money, UnknownCurrency
from apps.integrations.payments.base import (
    CallbackRefused,
    EventKind,
    PaymentEvent,
    PaymentRequest,
    PaymentStatus,
    ProviderCallback,
    ProviderError,
    SettledPayment,
    StartedPayment,
    StartKind,
)
from apps.integrations.payments.checkout import Checkout, CheckoutUnavailable, checkout_url
from apps.integrations.payments.signing import (
    LENDER_HEADER,
    SIGNATURE_HEADER,
    SignatureInvalid,
    TimestampStale,
    verify,
    webhook_secret_for,
)

KINDS = {"payment.succeeded": EventKind.PAID, "payment.reversed": EventKind.REVERSED}


class GenericAdapter:
    """One lender's signed webhook from ``provider`` (a name from PAYMENTS_PROVIDERS)."""

    def __init__(self, *, provider: str, lender_slug: str, lender_name: str = "") -> None:
        self.provider, self.lender_slug, self.lender_name = provider, lender_slug, lender_name

    def verify_signature(self, *, header: str, lender_slug: str, body: bytes) -> None:
        """CallbackRefused unless ``header`` signs ``body`` with this lender's secret, within
        PAYMENTS_WEBHOOK_TOLERANCE_SECONDS; the lender named must be this one."""
        if not header or lender_slug != self.lender_slug:
            raise CallbackRefused("signature_invalid")
        try:
            verify(
                header=header,
                secret=webhook_secret_for(lender_slug=self.lender_slug, provider=self.provider),
                body=body,
                tolerance=settings.PAYMENTS_WEBHOOK_TOLERANCE_SECONDS,
            )
        except SignatureInvalid as exc:
            raise CallbackRefused("signature_invalid") from exc
        except TimestampStale as exc:
            raise CallbackRefused("timestamp_stale") from exc

    def start(self, request: PaymentRequest) -> StartedPayment:
        """The demo checkout page (PAYMENTS_FAKE_CHECKOUT): a real provider behind the generic
        webhook takes payments on its own side."""
        try:
            url = checkout_url(
                checkout=Checkout(
                    lender_slug=self.lender_slug,
                    lender_name=self.lender_name,
                    loan_reference=request.loan_reference,
                    amount=request.amount,
                    return_url=request.return_url,
                )
            )
        except CheckoutUnavailable as exc:
            raise ProviderError("unsupported", "no checkout for this provider") from exc
        return StartedPayment(
            attempt_ref="", kind=StartKind.REDIRECT, amount=request.amount, redirect_url=url
        )

    def parse_callback(self, callback: ProviderCallback) -> list[PaymentEvent]:
        self.verify_signature(
            header=callback.headers.get(SIGNATURE_HEADER.lower(), ""),
            lender_slug=callback.headers.get(LENDER_HEADER.lower(), ""),
            body=callback.body,
        )
        try:
            raw = json.loads(callback.body)
            data: dict[str, Any] = raw["data"]
            kind = KINDS[raw["type"]]
            received = data.get("received_at")
            return [
                PaymentEvent(
                    provider=self.provider,
                    event_id=str(raw["id"]),
                    event_type=str(raw["type"]),
                    kind=kind,
                    received_at=(
                        datetime.fromisoformat(received) if received else datetime.now(tz=UTC)
                    ),
                    amount=Money(Decimal(str(data["amount"])), str(data["currency"]).upper()),
                    reference=str(data["reference"]),
                    loan_reference=str(data["loan"]),
                    reverses=str(data.get("reverses", "")),
                    reversal_kind=str(data.get("kind", "chargeback")),
                )
            ]
        except (
            UnicodeDecodeError,
            json.JSONDecodeError,
            RecursionError,
            KeyError,
            TypeError,
            ValueError,
            InvalidOperation,
            UnknownCurrency,
        ) as exc:
            raise CallbackRefused("malformed", "not a payment event") from exc

    def status(self, *, attempt_ref: str) -> PaymentStatus:
        raise ProviderError("unsupported", "the generic webhook has no status query")

    def settled(self, *, start: datetime, end: datetime) -> list[SettledPayment] | None:
        return None
