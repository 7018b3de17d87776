"""A hand-built business day of payments through Stripe (the loopback Stripe) and the M-Pesa
paybill, for the reconciliation report's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import time_machine
from django.test import Client

from apps.collections.models import Loan, Payment
from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_day_start, lender_local_date
from tests.collections.daraja import SHORTCODE, call, path, paybill_for
from tests.collections.factories import signed_loan
from tests.collections.stripe import checkout_started, deliver, stripe_for
from tools.fakes.daraja import FakeDaraja
from tools.fakes.stripe import FakeStripe


def the_day(lender: Lender) -> date:
    """A business day well over: three days ago in the lender's timezone."""
    return lender_local_date(lender=lender) - timedelta(days=3)


def at(lender: Lender, day: date, hours: float) -> datetime:
    """``hours`` after the lender's local midnight starting ``day``."""
    return lender_day_start(lender=lender, day=day) + timedelta(hours=hours)


def stripe_account(lender: Lender, fake: FakeStripe, secret_key: str) -> None:
    """The lender's own Stripe account (each lender has its own, as each Stripe account lists
    only its own payments)."""
    fake.api_key(secret_key)
    stripe_for(lender, secret_key)


def card_paid(client: Client, fake: FakeStripe, loan: Loan, *, delivered: bool = True) -> str:
    """The customer pays a checkout by card; Stripe's webhook reaches us unless not
    ``delivered``. Returns the PaymentIntent's id."""
    attempt = checkout_started(loan)
    events = fake.pay_card(attempt.attempt_ref)
    if delivered:
        for event in events:
            assert deliver(client, fake, loan.lender, event).status_code == 200
    return next(e for e in events if e["type"] == "payment_intent.succeeded")["data"]["object"][
        "id"
    ]


def stripe_payment_recorded(loan: Loan, reference: str, amount: Decimal, when: datetime) -> Payment:
    """A Stripe payment in our books not through Stripe's webhook (as an import would write
    one, or a payment since refunded in full and deleted at Stripe)."""
    return payment_record(
        loan_id=loan.pk,
        lender_id=loan.lender_id,
        amount=Money(amount, loan.currency),
        channel=Payment.Channel.PROVIDER,
        provider="stripe",
        provider_ref=reference,
        received_at=when,
        actor=Actor.system(),
    ).payment


@dataclass
class Day:
    day: date
    matched: str
    stripe_only: str
    ours_only: str
    differs: str
    paybill_receipt: str
    paybill_payment: str
    loans: list[Loan]


def a_day_of_payments(
    client: Client, lender: Lender, stripe: FakeStripe, daraja: FakeDaraja, secret_key: str
) -> Day:
    """On ``the_day`` (lender A, shillings): a card payment both sides have, one Stripe
    settled whose webhook never came, one of ours Stripe does not list, one whose amount
    differs, a paybill payment to a loan and one to an account naming no loan."""
    day = the_day(lender)
    with time_machine.travel(at(lender, day, 9), tick=True):
        stripe_account(lender, stripe, secret_key)
        paybill_for(lender)
        loans = [signed_loan(lender, price="3500", down="500", installments=3) for _ in range(5)]
    with time_machine.travel(at(lender, day, 10), tick=True):
        matched = card_paid(client, stripe, loans[0])
        stripe_only = card_paid(client, stripe, loans[1], delivered=False)
        differs = card_paid(client, stripe, loans[2], delivered=False)
        settled_amount = Decimal(stripe.payment_intents[differs]["amount_received"]) / 100
        stripe_payment_recorded(loans[2], differs, settled_amount - 1, at(lender, day, 10.5))
        stripe_payment_recorded(loans[3], "pi_NotAtStripe0001", Decimal(250), at(lender, day, 11))
    with time_machine.travel(at(lender, day, 12), tick=True):
        paid = daraja.c2b_body(shortcode=SHORTCODE, account=loans[4].reference, amount="700")
        assert call(client, path(lender, "c2b-confirmation"), paid).status_code == 200
        lost = daraja.c2b_body(shortcode=SHORTCODE, account="SC-NOSUCH99", amount="450")
        assert call(client, path(lender, "c2b-confirmation"), lost).status_code == 200
    return Day(
        day=day,
        matched=matched,
        stripe_only=stripe_only,
        ours_only="pi_NotAtStripe0001",
        differs=differs,
        paybill_receipt=lost["TransID"],
        paybill_payment=paid["TransID"],
        loans=loans,
    )
