"""The Stripe adapter, Stripe's own client included, against a loopback fake of Stripe's API:
a Checkout Session for cards and OXXO, every webhook event we read, the signature checks,
a session's status and the settled payments."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import stripe

from apps.core.money import Money
from apps.integrations.payments.base import (
    CallbackRefused,
    EventKind,
    PaymentEvent,
    PaymentRequest,
    ProviderCallback,
    ProviderError,
    StartKind,
    StatusKind,
)
from apps.integrations.payments.stripe_checkout import StripeAdapter, money_to_stripe
from tools.fakes.stripe import FakeStripe, sign_webhook

SECRET_KEY = "sk_test_51Lender0000000000AbCdEfGh"
OTHER_KEY = "sk_test_51Other00000000000ZyXwVuTs"
WEBHOOK_SECRET = "whsec_Lender0000000000000000000001"
RETURN_URL = "https://pay.example.com/l/SC-AB12CD34/"


@pytest.fixture
def fake():
    stub = FakeStripe([SECRET_KEY, OTHER_KEY])
    stub.start()
    yield stub
    stub.stop()


@pytest.fixture
def adapter(fake):
    return StripeAdapter(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, base_url=fake.base)


def ask(amount: str = "1650.00", currency: str = "KES", **changes) -> PaymentRequest:
    fields = {
        "key": "attempt-17",
        "lender_slug": "acme",
        "loan_reference": "SC-AB12CD34",
        "amount": Money(Decimal(amount), currency),
        "description": "Installment 3 of 12",
        "return_url": RETURN_URL,
        "email": "wanjiru@example.com",
    } | changes
    return PaymentRequest(**fields)


def delivered(fake, event, secret=WEBHOOK_SECRET, timestamp=None) -> ProviderCallback:
    body, headers = fake.signed(event, secret, timestamp)
    return ProviderCallback(body=body, headers=headers, remote_addr="3.18.12.63")


def read(adapter, fake, events) -> dict[str, PaymentEvent]:
    """Each event as the adapter reads it, by Stripe's event type."""
    parsed = {}
    for event in events:
        (one,) = adapter.parse_callback(delivered(fake, event))
        assert (one.provider, one.event_id, one.event_type) == (
            "stripe",
            event["id"],
            event["type"],
        )
        parsed[event["type"]] = one
    return parsed


def created_params(fake) -> dict:
    (call,) = [c for c in fake.requests if (c.method, c.path) == ("POST", "/v1/checkout/sessions")]
    return call.params


# --- start ------------------------------------------------------------------------------


def test_a_shilling_payment_opens_a_card_checkout_for_the_amount_in_cents(fake, adapter) -> None:
    started = adapter.start(ask())
    session = fake.sessions[started.attempt_ref]
    assert (started.kind, started.redirect_url) == (StartKind.REDIRECT, session["url"])
    assert started.amount == Money(Decimal("1650.00"), "KES")
    assert (session["amount_total"], session["currency"]) == (165000, "kes")
    assert session["payment_method_types"] == ["card"]
    assert session["payment_method_options"] == {}
    assert session["client_reference_id"] == "SC-AB12CD34"
    assert session["customer_email"] == "wanjiru@example.com"
    assert (session["success_url"], session["cancel_url"]) == (f"{RETURN_URL}?paid=1", RETURN_URL)
    expected = {"attempt": "attempt-17", "loan": "SC-AB12CD34", "lender": "acme"}
    assert session["metadata"] == expected
    params = created_params(fake)
    assert params["payment_intent_data"]["metadata"] == expected
    assert params["line_items"][0]["price_data"]["product_data"]["name"] == "Installment 3 of 12"
    assert fake.requests[0].idempotency_key == "attempt-17"


def test_a_peso_payment_offers_cards_and_an_oxxo_voucher_for_three_days(fake, adapter) -> None:
    started = adapter.start(ask("499.90", "MXN", email=""))
    session = fake.sessions[started.attempt_ref]
    assert (session["amount_total"], session["currency"]) == (49990, "mxn")
    assert session["payment_method_types"] == ["card", "oxxo"]
    assert session["payment_method_options"] == {"oxxo": {"expires_after_days": 3}}
    assert session["customer_email"] is None
    assert "oxxo" in requests.get(started.redirect_url, timeout=5).text.lower()


def test_oxxo_is_refused_by_stripe_outside_pesos(fake, adapter) -> None:
    # the fake refuses what Stripe refuses: the adapter must never ask for it
    answer = requests.post(
        f"{fake.base}/v1/checkout/sessions",
        data={
            "mode": "payment",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "kes",
            "line_items[0][price_data][unit_amount]": "100",
            "line_items[0][price_data][product_data][name]": "x",
            "allowed_payment_method_types[0]": "oxxo",
        },
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "allowed_payment_method_types"


def test_the_success_url_marks_paid_after_its_own_query(fake, adapter) -> None:
    started = adapter.start(ask(return_url="https://pay.example.com/l/SC-1/?lang=es#now"))
    assert fake.sessions[started.attempt_ref]["success_url"] == (
        "https://pay.example.com/l/SC-1/?lang=es&paid=1#now"
    )


def test_the_same_attempt_gets_the_same_session(fake, adapter) -> None:
    first = adapter.start(ask())
    again = adapter.start(ask())
    assert again.attempt_ref == first.attempt_ref
    assert len(fake.sessions) == 1
    other = adapter.start(ask(key="attempt-18"))
    assert other.attempt_ref != first.attempt_ref
    with pytest.raises(ProviderError) as refused:  # the key reused for another amount
        adapter.start(ask("10.00"))
    assert refused.value.code == "idempotency_error"
    assert len(fake.sessions) == 2


def test_a_wrong_secret_key_is_refused_and_never_repeated(fake) -> None:
    wrong = "sk_test_51Wrong000000000000Q1w2E3r4"
    adapter = StripeAdapter(secret_key=wrong, webhook_secret=WEBHOOK_SECRET, base_url=fake.base)
    with pytest.raises(ProviderError) as refused:
        adapter.start(ask())
    assert refused.value.code == "401"
    assert "Invalid API Key" in refused.value.message
    for text in (str(refused.value), refused.value.message, repr(adapter)):
        assert wrong not in text
        assert wrong[-4:] not in text  # not even the part Stripe shows
    assert not fake.sessions


def test_amounts_go_to_stripe_in_its_units_never_short() -> None:
    assert money_to_stripe(Money(Decimal("1650.00"), "KES")) == 165000
    assert money_to_stripe(Money(Decimal("1650.005"), "KES")) == 165001  # up, never down
    assert money_to_stripe(Money(Decimal("500"), "JPY")) == 500
    assert money_to_stripe(Money(Decimal("12.341"), "KWD")) == 12350  # tens of fils
    assert money_to_stripe(Money(Decimal("1500"), "ISK")) == 150000  # two decimals at Stripe


def test_an_amount_below_one_unit_is_not_sent(fake, adapter) -> None:
    with pytest.raises(ProviderError) as refused:
        adapter.start(ask("0.00"))
    assert refused.value.code == "amount"
    assert not fake.requests


def test_a_three_decimal_currency_asks_the_amount_stripe_takes(fake, adapter) -> None:
    started = adapter.start(ask("12.341", "KWD"))
    assert fake.sessions[started.attempt_ref]["amount_total"] == 12350
    assert started.amount == Money(Decimal("12.350"), "KWD")


# --- events -----------------------------------------------------------------------------


def test_a_card_payment_applies_once_by_its_payment_intent(fake, adapter) -> None:
    started = adapter.start(ask())
    events = read(adapter, fake, fake.pay_card(started.attempt_ref))
    intent = fake.sessions[started.attempt_ref]["payment_intent"]
    paid = [e for e in events.values() if e.kind == EventKind.PAID]
    assert {e.event_type for e in paid} == {
        "checkout.session.completed",
        "payment_intent.succeeded",
    }
    assert {e.reference for e in paid} == {intent}  # one key: applied once downstream
    completed = events["checkout.session.completed"]
    assert (completed.attempt_ref, completed.attempt_key) == (started.attempt_ref, "attempt-17")
    assert completed.loan_reference == "SC-AB12CD34"
    assert completed.amount == Money(Decimal("1650.00"), "KES")
    succeeded = events["payment_intent.succeeded"]
    assert (succeeded.attempt_key, succeeded.loan_reference) == ("attempt-17", "SC-AB12CD34")
    assert succeeded.amount == Money(Decimal("1650.00"), "KES")
    for other in ("payment_intent.created", "charge.succeeded"):
        assert events[other].kind == EventKind.IGNORED


def test_an_oxxo_voucher_is_pending_with_its_number_and_expiry(fake, adapter) -> None:
    fake.clock = lambda: datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()  # a Monday
    started = adapter.start(ask("499.90", "MXN"))
    events = read(adapter, fake, fake.issue_oxxo(started.attempt_ref))
    intent = fake.payment_intents[fake.sessions[started.attempt_ref]["payment_intent"]]
    shown = intent["next_action"]["oxxo_display_details"]
    completed = events["checkout.session.completed"]
    assert completed.kind == EventKind.PENDING
    assert (completed.attempt_ref, completed.reference) == (started.attempt_ref, intent["id"])
    assert completed.voucher.number == shown["number"]
    # three days on, at the end of the day in Mexico City
    mexico = timezone(timedelta(hours=-6))
    assert completed.voucher.expires_at == datetime(2026, 3, 5, 23, 59, 59, tzinfo=mexico)
    assert completed.voucher.url == shown["hosted_voucher_url"]
    # the session event names its PaymentIntent only: the voucher was read from the API
    assert any(c.path == f"/v1/payment_intents/{intent['id']}" for c in fake.requests)
    action = events["payment_intent.requires_action"]
    assert (action.kind, action.voucher, action.reference) == (
        EventKind.PENDING,
        completed.voucher,
        intent["id"],
    )
    assert action.amount == Money(Decimal("499.90"), "MXN")
    assert number_on_page(completed.voucher.url) == shown["number"]


def number_on_page(url: str) -> str:
    page = requests.get(url, timeout=5).text
    return page.split("<strong>")[1].split("</strong>")[0]


def test_a_voucher_paid_at_the_shop_applies_days_later(fake, adapter) -> None:
    started = adapter.start(ask("499.90", "MXN"))
    fake.issue_oxxo(started.attempt_ref)
    events = read(adapter, fake, fake.settle_oxxo(started.attempt_ref))
    intent = fake.sessions[started.attempt_ref]["payment_intent"]
    later = events["checkout.session.async_payment_succeeded"]
    assert (later.kind, later.reference, later.attempt_ref) == (
        EventKind.PAID,
        intent,
        started.attempt_ref,
    )
    assert later.amount == Money(Decimal("499.90"), "MXN")
    succeeded = events["payment_intent.succeeded"]
    assert (succeeded.kind, succeeded.reference) == (EventKind.PAID, intent)


def test_a_lapsed_voucher_and_an_expired_checkout_fail(fake, adapter) -> None:
    voucher = adapter.start(ask("499.90", "MXN"))
    fake.issue_oxxo(voucher.attempt_ref)
    lapsed = read(adapter, fake, fake.lapse_oxxo(voucher.attempt_ref))
    failed = lapsed["checkout.session.async_payment_failed"]
    assert (failed.kind, failed.attempt_ref, failed.attempt_key) == (
        EventKind.FAILED,
        voucher.attempt_ref,
        "attempt-17",
    )
    assert lapsed["payment_intent.payment_failed"].kind == EventKind.IGNORED
    abandoned = adapter.start(ask(key="attempt-18"))
    (expired,) = read(adapter, fake, fake.expire(abandoned.attempt_ref)).values()
    assert (expired.kind, expired.attempt_ref, expired.attempt_key) == (
        EventKind.FAILED,
        abandoned.attempt_ref,
        "attempt-18",
    )


def test_each_partial_refund_is_its_own_reversal(fake, adapter) -> None:
    started = adapter.start(ask())
    fake.pay_card(started.attempt_ref)
    intent = fake.sessions[started.attempt_ref]["payment_intent"]
    first = read(adapter, fake, fake.refund(intent, 50000))
    second = read(adapter, fake, fake.refund(intent, 30000))
    reversals = [first["refund.created"], second["refund.created"]]
    assert [r.kind for r in reversals] == [EventKind.REVERSED] * 2
    assert [r.reversal_kind for r in reversals] == ["refund"] * 2
    assert [r.reverses for r in reversals] == [intent] * 2
    assert [r.reference for r in reversals] == list(fake.refunds)  # each refund's own id
    assert reversals[0].reference != reversals[1].reference
    assert [r.amount for r in reversals] == [
        Money(Decimal("500.00"), "KES"),
        Money(Decimal("300.00"), "KES"),
    ]
    # the charge's running total says nothing of which refund it was
    assert first["charge.refunded"].kind == second["charge.refunded"].kind == EventKind.IGNORED


def test_a_refund_applies_once_it_has_succeeded(fake, adapter) -> None:
    started = adapter.start(ask())
    fake.pay_card(started.attempt_ref)
    intent = fake.sessions[started.attempt_ref]["payment_intent"]
    fake.clock = lambda: 1_767_225_600.0
    pending = read(adapter, fake, fake.refund(intent, status="pending"))["refund.created"]
    assert pending.kind == EventKind.IGNORED
    (refund_id,) = fake.refunds
    fake.clock = lambda: 1_767_225_600.0 + 7200
    (settled,) = read(adapter, fake, fake.settle_refund(refund_id)).values()
    assert settled.received_at == datetime.fromtimestamp(1_767_225_600, UTC)  # the refund's
    assert (settled.kind, settled.reference, settled.reverses) == (
        EventKind.REVERSED,
        refund_id,
        intent,
    )
    assert settled.amount == Money(Decimal("1650.00"), "KES")


def test_a_dispute_is_a_chargeback_keyed_by_the_dispute(fake, adapter) -> None:
    started = adapter.start(ask())
    fake.pay_card(started.attempt_ref)
    intent = fake.sessions[started.attempt_ref]["payment_intent"]
    events = read(adapter, fake, fake.dispute(intent))
    (dispute_id,) = fake.disputes
    for kind in ("charge.dispute.created", "charge.dispute.funds_withdrawn"):
        event = events[kind]
        assert (event.kind, event.reversal_kind) == (EventKind.REVERSED, "chargeback")
        assert (event.reference, event.reverses) == (dispute_id, intent)
        assert event.amount == Money(Decimal("1650.00"), "KES")


def test_an_inquiry_takes_no_money(fake, adapter) -> None:
    started = adapter.start(ask())
    fake.pay_card(started.attempt_ref)
    intent = fake.sessions[started.attempt_ref]["payment_intent"]
    (inquiry,) = read(adapter, fake, fake.dispute(intent, inquiry=True)).values()
    assert inquiry.kind == EventKind.IGNORED


def test_an_event_of_no_use_is_verified_and_ignored(fake, adapter) -> None:
    event = {"id": "evt_1", "object": "event", "type": "customer.created", "created": 1}
    event["data"] = {"object": {"id": "cus_1", "object": "customer"}}
    (ignored,) = adapter.parse_callback(delivered(fake, event))
    assert (ignored.kind, ignored.event_id) == (EventKind.IGNORED, "evt_1")
    with pytest.raises(CallbackRefused):
        adapter.parse_callback(delivered(fake, event, secret="whsec_SomeoneElse0000000"))


def test_a_currency_the_product_does_not_know_is_malformed(fake, adapter) -> None:
    started = adapter.start(ask())
    event = fake.pay_card(started.attempt_ref)[-1]
    event["data"]["object"]["currency"] = "xts"
    with pytest.raises(CallbackRefused) as refused:
        adapter.parse_callback(delivered(fake, event))
    assert refused.value.problem == "malformed"


# --- signatures ---------------------------------------------------------------------------


def test_the_signature_is_stripes_own_scheme() -> None:
    body = b'{"id": "evt_1"}'
    expected = stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_x", 1700)
    assert sign_webhook(body, "whsec_x", 1700) == expected


@pytest.fixture
def paid_event(fake, adapter):
    started = adapter.start(ask())
    return fake.pay_card(started.attempt_ref)[-1]


def refused_as(adapter, callback: ProviderCallback) -> str:
    with pytest.raises(CallbackRefused) as refused:
        adapter.parse_callback(callback)
    return refused.value.problem


def test_a_callback_signed_with_another_secret_is_refused(fake, adapter, paid_event) -> None:
    callback = delivered(fake, paid_event, secret="whsec_Attacker000000000000000001")
    assert refused_as(adapter, callback) == "signature_invalid"


def test_a_tampered_body_is_refused(fake, adapter, paid_event) -> None:
    callback = delivered(fake, paid_event)
    forged = callback.body.replace(b"165000", b"965000")
    assert forged != callback.body
    assert refused_as(adapter, ProviderCallback(forged, callback.headers)) == "signature_invalid"


def test_a_callback_with_no_signature_is_refused(fake, adapter, paid_event) -> None:
    callback = delivered(fake, paid_event)
    assert refused_as(adapter, ProviderCallback(callback.body, {})) == "signature_invalid"
    garbled = {"stripe-signature": "t=soon,v1=abc"}
    assert refused_as(adapter, ProviderCallback(callback.body, garbled)) == "signature_invalid"


def test_a_callback_signed_more_than_300_seconds_away_is_stale(fake, adapter, paid_event) -> None:
    now = int(time.time())
    old = delivered(fake, paid_event, timestamp=now - 301)
    assert refused_as(adapter, old) == "timestamp_stale"
    ahead = delivered(fake, paid_event, timestamp=now + 400)
    assert refused_as(adapter, ahead) == "timestamp_stale"
    # a replay of a genuine delivery within the window reads the same; its event id keys it
    recent = delivered(fake, paid_event, timestamp=now - 280)
    assert adapter.parse_callback(recent)[0].event_id == paid_event["id"]


def test_a_signed_body_that_is_no_event_is_malformed(fake, adapter) -> None:
    for body in (b"not json", b"[1, 2]", json.dumps({"object": "v2.core.event"}).encode()):
        headers = {"stripe-signature": sign_webhook(body, WEBHOOK_SECRET)}
        assert refused_as(adapter, ProviderCallback(body, headers)) == "malformed"
    body = b"\xff\xfe"
    headers = {"stripe-signature": sign_webhook(body, WEBHOOK_SECRET)}
    assert refused_as(adapter, ProviderCallback(body, headers)) == "malformed"


# --- status -------------------------------------------------------------------------------


def test_the_status_follows_the_checkout(fake, adapter) -> None:
    card = adapter.start(ask())
    assert adapter.status(attempt_ref=card.attempt_ref).state == StatusKind.PENDING
    fake.clock = lambda: 1_767_225_600.0
    fake.pay_card(card.attempt_ref)
    paid = adapter.status(attempt_ref=card.attempt_ref)
    assert paid.state == StatusKind.PAID
    assert paid.reference == fake.sessions[card.attempt_ref]["payment_intent"]
    assert paid.amount == Money(Decimal("1650.00"), "KES")
    assert paid.received_at == datetime.fromtimestamp(1_767_225_600, UTC)

    abandoned = adapter.start(ask(key="attempt-18"))
    fake.expire(abandoned.attempt_ref)
    assert adapter.status(attempt_ref=abandoned.attempt_ref).state == StatusKind.EXPIRED


def test_the_status_of_a_voucher_is_pending_until_paid_or_lapsed(fake, adapter) -> None:
    paid = adapter.start(ask("499.90", "MXN"))
    fake.issue_oxxo(paid.attempt_ref)
    waiting = adapter.status(attempt_ref=paid.attempt_ref)
    intent = fake.sessions[paid.attempt_ref]["payment_intent"]
    assert (waiting.state, waiting.reference) == (StatusKind.PENDING, intent)
    fake.clock = lambda: 1_767_225_600.0
    fake.settle_oxxo(paid.attempt_ref)
    settled = adapter.status(attempt_ref=paid.attempt_ref)
    assert (settled.state, settled.reference) == (StatusKind.PAID, intent)
    assert settled.received_at == datetime.fromtimestamp(1_767_225_600, UTC)  # at the shop

    lapsed = adapter.start(ask("499.90", "MXN", key="attempt-18"))
    fake.issue_oxxo(lapsed.attempt_ref)
    fake.lapse_oxxo(lapsed.attempt_ref)
    assert adapter.status(attempt_ref=lapsed.attempt_ref).state == StatusKind.FAILED


def test_the_status_of_a_session_stripe_does_not_have_is_a_provider_error(fake, adapter) -> None:
    with pytest.raises(ProviderError) as missing:
        adapter.status(attempt_ref="cs_test_nothing")
    assert missing.value.code == "resource_missing"
    theirs = StripeAdapter(secret_key=OTHER_KEY, webhook_secret=WEBHOOK_SECRET, base_url=fake.base)
    started = theirs.start(ask())
    with pytest.raises(ProviderError) as elsewhere:  # another lender's account
        adapter.status(attempt_ref=started.attempt_ref)
    assert elsewhere.value.code == "resource_missing"


# --- settled payments ---------------------------------------------------------------------


def test_settled_lists_every_page_of_the_days_payments(fake, adapter) -> None:
    day = datetime(2026, 3, 2, tzinfo=UTC)
    at = day.timestamp()

    def pay(n: int, when: float, currency: str = "KES") -> str:
        fake.clock = lambda: when
        started = adapter.start(ask("10.00", currency, key=f"a-{n}", loan_reference=f"L-{n}"))
        fake.pay_card(started.attempt_ref)
        return fake.sessions[started.attempt_ref]["payment_intent"]

    inside = [pay(n, at + n * 60) for n in range(120)]  # more than one page of 100
    pay(500, at - 1)  # the day before
    pay(501, at + 86400)  # the next day
    fake.clock = lambda: at + 3600
    voucher = adapter.start(ask("10.00", "MXN", key="voucher"))
    fake.issue_oxxo(voucher.attempt_ref)  # not paid: not settled
    voucher_intent = fake.sessions[voucher.attempt_ref]["payment_intent"]
    cash = adapter.start(ask("10.00", "MXN", key="cash", loan_reference="L-cash"))
    fake.issue_oxxo(cash.attempt_ref)
    fake.clock = lambda: at + 2 * 86400  # paid at the shop two days later
    fake.settle_oxxo(cash.attempt_ref)
    cash_intent = fake.sessions[cash.attempt_ref]["payment_intent"]

    settled = adapter.settled(start=day, end=day + timedelta(days=1))
    assert sorted(s.reference for s in settled) == sorted([*inside, cash_intent])
    (by_voucher,) = [s for s in settled if s.reference == cash_intent]
    assert by_voucher.received_at == datetime.fromtimestamp(at + 2 * 86400, UTC)
    assert by_voucher.amount == Money(Decimal("10.00"), "MXN")
    first = next(s for s in settled if s.reference == inside[7])
    assert first.amount == Money(Decimal("10.00"), "KES")
    assert first.loan_reference == "L-7"
    assert first.received_at == datetime.fromtimestamp(at + 7 * 60, UTC)
    pages = [c for c in fake.requests if c.path == "/v1/payment_intents"]
    assert len(pages) == 2  # the second from where the first stopped
    assert "starting_after" not in pages[0].params
    assert pages[1].params["starting_after"] in {*inside, voucher_intent, cash_intent}


# --- the fake's webhooks and hosted page ----------------------------------------------------


@pytest.fixture
def endpoint():
    received: list[tuple[bytes, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, {k.lower(): v for k, v in self.headers.items()}))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/stripe/", received
    server.shutdown()
    server.server_close()


def test_events_are_posted_signed_to_the_accounts_endpoint(fake, adapter, endpoint) -> None:
    url, received = endpoint
    fake.webhook(url, WEBHOOK_SECRET, api_key=SECRET_KEY)
    theirs = StripeAdapter(secret_key=OTHER_KEY, webhook_secret=WEBHOOK_SECRET, base_url=fake.base)
    fake.pay_card(theirs.start(ask()).attempt_ref)  # another account: not ours to hear
    assert received == []
    events = fake.pay_card(adapter.start(ask(key="attempt-18")).attempt_ref)
    assert len(received) == len(events) == 4
    got = [adapter.parse_callback(ProviderCallback(b, h))[0] for b, h in received]
    assert [e.event_id for e in got] == [e["id"] for e in events]
    assert fake.deliver(events[-1]) == [200]  # Stripe delivers again: the same event id
    assert adapter.parse_callback(ProviderCallback(*received[-1]))[0].event_id == events[-1]["id"]


def test_the_hosted_page_takes_a_card_and_returns_to_the_lender(fake, adapter) -> None:
    started = adapter.start(ask())
    page = requests.get(started.redirect_url, timeout=5).text
    assert "Pay by card" in page
    assert "OXXO" not in page  # shillings: cards only
    answer = requests.post(f"{started.redirect_url}/card", allow_redirects=False, timeout=5)
    assert (answer.status_code, answer.headers["Location"]) == (303, f"{RETURN_URL}?paid=1")
    assert fake.sessions[started.attempt_ref]["payment_status"] == "paid"


def test_the_hosted_page_issues_an_oxxo_voucher_in_pesos(fake, adapter) -> None:
    started = adapter.start(ask("499.90", "MXN"))
    answer = requests.post(f"{started.redirect_url}/oxxo", allow_redirects=False, timeout=5)
    assert answer.status_code == 303
    session = fake.sessions[started.attempt_ref]
    assert (session["status"], session["payment_status"]) == ("complete", "unpaid")
    assert adapter.status(attempt_ref=started.attempt_ref).state == StatusKind.PENDING
