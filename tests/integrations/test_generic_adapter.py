"""The generic signed webhook as one adapter of the seam: its signature, its event, and what
it cannot do (no status query, no settled list)."""

import time
from decimal import Decimal

import pytest

from apps.core.money import Money
from apps.integrations.payments.base import (
    CallbackRefused,
    EventKind,
    PaymentRequest,
    ProviderCallback,
    ProviderError,
    StartKind,
)
from apps.integrations.payments.generic import GenericAdapter
from apps.integrations.payments.signing import sign, webhook_secret_for
from tests.collections.webhooks import event

ADAPTER = GenericAdapter(provider="demo", lender_slug="lender-a", lender_name="Lender A")


def callback(body: bytes, *, lender: str = "lender-a", timestamp: int | None = None, secret=None):
    secret = secret or webhook_secret_for(lender_slug=lender, provider="demo")
    return ProviderCallback(
        body=body,
        headers={
            "x-lender": "lender-a",
            "x-signature": sign(secret=secret, body=body, timestamp=timestamp),
        },
    )


def test_a_signed_payment_reads_as_the_seams_event() -> None:
    body = event("SC-ABCD2345", "250.50", "MP-1", received_at="2026-12-01T10:00:00+00:00")
    (paid,) = ADAPTER.parse_callback(callback(body))
    assert (paid.kind, paid.event_id, paid.reference, paid.loan_reference) == (
        EventKind.PAID,
        "evt-MP-1",
        "MP-1",
        "SC-ABCD2345",
    )
    assert paid.amount == Money(Decimal("250.50"), "KES")


def test_a_reversal_names_the_payment_it_reverses() -> None:
    body = event(
        "SC-ABCD2345", "50", "RV-1", type_="payment.reversed", reverses="MP-1", kind="refund"
    )
    (reversed_,) = ADAPTER.parse_callback(callback(body))
    assert (reversed_.kind, reversed_.reverses, reversed_.reversal_kind) == (
        EventKind.REVERSED,
        "MP-1",
        "refund",
    )


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("another_lenders_secret", "signature_invalid"),
        ("stale", "timestamp_stale"),
        ("not_an_event", "malformed"),
    ],
)
def test_what_is_not_a_signed_event_of_this_lender_is_refused(case, problem) -> None:
    body = event("SC-ABCD2345", "250.50", "MP-1")
    if case == "another_lenders_secret":
        sent = callback(body, lender="lender-b")
    elif case == "stale":
        sent = callback(body, timestamp=int(time.time()) - 3600)
    else:
        sent = callback(b'{"id": "x", "type": "payment.succeeded"}')
    with pytest.raises(CallbackRefused) as refused:
        ADAPTER.parse_callback(sent)
    assert refused.value.problem == problem


def test_it_starts_the_demo_checkout_and_has_no_status_query() -> None:
    started = ADAPTER.start(
        PaymentRequest(
            key="k",
            lender_slug="lender-a",
            loan_reference="SC-ABCD2345",
            amount=Money(Decimal(100), "KES"),
            description="Loan",
            return_url="http://testserver/my/lender-a/",
        )
    )
    assert (started.kind, started.redirect_url.startswith("/demo-provider/checkout/")) == (
        StartKind.REDIRECT,
        True,
    )
    with pytest.raises(ProviderError):
        ADAPTER.status(attempt_ref="x")
    assert ADAPTER.settled(start=None, end=None) is None
