"""Reading WhatsApp's webhooks as the loopback Cloud API sends them: the verify-token
handshake, signed status updates and the customer's messages; anything unsigned, mis-signed
or not the webhook's JSON is refused."""

import hashlib
import hmac
import time
from dataclasses import replace

import pytest

from apps.integrations.messaging.base import (
    CallbackRead,
    CallbackRefused,
    Channel,
    Delivery,
    DeliveryUpdate,
    InboundText,
    Outbound,
    ProviderCallback,
)
from apps.integrations.messaging.whatsapp import WhatsAppAdapter
from tests.integrations.whatsapp import (
    ACCESS_TOKEN,
    ACCOUNT,
    APP_SECRET,
    BUSINESS_ACCOUNT_ID,
    CUSTOMER,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
)
from tools.fakes.whatsapp import FakeWhatsApp


@pytest.fixture
def whatsapp(whatsapp_fake) -> WhatsAppAdapter:
    """Lender A's adapter, sending to the loopback Cloud API."""
    return WhatsAppAdapter(ACCOUNT)


def read(adapter: WhatsAppAdapter, inbox) -> CallbackRead:
    """What the adapter reads of the last request the fake sent to the webhook URL."""
    return adapter.read_callback(inbox.last())


def test_the_verify_handshake_echoes_the_challenge(whatsapp, whatsapp_fake, whatsapp_inbox):
    whatsapp_fake.handshake(PHONE_NUMBER_ID, challenge="1158201444")
    callback = whatsapp_inbox.last()
    assert callback.method == "GET"
    assert whatsapp.read_callback(callback) == CallbackRead(challenge="1158201444")


@pytest.mark.parametrize(
    "fields",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "verify-lender-b-0002"},
        {"hub.mode": "subscribe", "hub.verify_token": ""},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN},
    ],
)
def test_a_handshake_without_the_accounts_token_is_refused(
    whatsapp, whatsapp_fake, whatsapp_inbox, fields
):
    whatsapp_fake.handshake(PHONE_NUMBER_ID, verify_token="verify-lender-b-0002")
    callback = replace(whatsapp_inbox.last(), fields={**fields, "hub.challenge": "42"})
    with pytest.raises(CallbackRefused) as refused:
        whatsapp.read_callback(callback)
    assert refused.value.problem == "token_invalid"


def test_an_account_without_a_verify_token_answers_no_handshake(whatsapp_fake, whatsapp_inbox):
    whatsapp_fake.handshake(PHONE_NUMBER_ID, verify_token="")
    with pytest.raises(CallbackRefused):
        WhatsAppAdapter(replace(ACCOUNT, verify_token="")).read_callback(whatsapp_inbox.last())


def sent_text(adapter: WhatsAppAdapter, fake: FakeWhatsApp) -> str:
    """A text sent inside the customer's 24-hour window."""
    fake.last_inbound[(PHONE_NUMBER_ID, CUSTOMER[1:])] = time.time()
    return adapter.send(Outbound(to=CUSTOMER, text="Your receipt")).provider_ref


def test_each_status_is_read_and_a_read_message_counts_as_delivered(
    whatsapp, whatsapp_fake, whatsapp_inbox
):
    wamid = sent_text(whatsapp, whatsapp_fake)
    whatsapp_fake.settle(wamid, read=True)
    updates = [whatsapp.read_callback(c).updates for c in whatsapp_inbox.callbacks]
    assert [(u.provider, u.provider_ref, u.delivery, u.error) for (u,) in updates] == [
        ("whatsapp", wamid, Delivery.SENT, ""),
        ("whatsapp", wamid, Delivery.DELIVERED, ""),
        ("whatsapp", wamid, Delivery.DELIVERED, ""),
    ]
    assert all(u.at is not None and u.at.tzinfo is not None for (u,) in updates)


@pytest.mark.parametrize(
    ("graph_code", "error"),
    [(131026, "undeliverable"), (131049, "131049"), (130429, "rate_limited")],
)
def test_a_failed_status_carries_its_error_in_our_terms(
    whatsapp, whatsapp_fake, whatsapp_inbox, graph_code, error
):
    whatsapp_fake.fail_number(CUSTOMER, graph_code, later=True)
    wamid = sent_text(whatsapp, whatsapp_fake)
    whatsapp_fake.settle(wamid)
    (update,) = read(whatsapp, whatsapp_inbox).updates
    assert update == DeliveryUpdate(
        provider="whatsapp",
        provider_ref=wamid,
        delivery=Delivery.FAILED,
        error=error,
        at=update.at,
    )


def test_a_text_outside_the_customers_window_fails_as_outside_window(
    whatsapp, whatsapp_fake, whatsapp_inbox
):
    wamid = whatsapp.send(Outbound(to=CUSTOMER, text="Are you there?")).provider_ref
    whatsapp_fake.settle(wamid)
    (update,) = read(whatsapp, whatsapp_inbox).updates
    assert (update.delivery, update.error) == (Delivery.FAILED, "outside_window")


def test_an_inbound_text_is_read_with_the_senders_e164_number(
    whatsapp, whatsapp_fake, whatsapp_inbox
):
    whatsapp_fake.customer_writes(PHONE_NUMBER_ID, CUSTOMER, "SALDO")
    (message,) = read(whatsapp, whatsapp_inbox).inbound
    assert message == InboundText(
        provider="whatsapp",
        channel=Channel.WHATSAPP,
        sender="+254712345678",
        text="SALDO",
        provider_ref=message.provider_ref,
        to="+254700000100",
        at=message.at,
    )
    assert message.provider_ref.startswith("wamid.")
    assert message.at is not None


def test_a_button_or_interactive_reply_is_read_as_its_text(whatsapp, whatsapp_fake, whatsapp_inbox):
    whatsapp_fake.customer_taps(PHONE_NUMBER_ID, CUSTOMER, "PAY", payload="pay-link")
    assert [m.text for m in read(whatsapp, whatsapp_inbox).inbound] == ["PAY"]
    body = whatsapp_fake.inbound_body(PHONE_NUMBER_ID, CUSTOMER, interactive=("help", "HELP"))
    whatsapp_fake.post(PHONE_NUMBER_ID, body)
    assert [m.text for m in read(whatsapp, whatsapp_inbox).inbound] == ["HELP"]


def test_what_is_neither_a_status_nor_a_text_is_ignored(whatsapp, whatsapp_fake, whatsapp_inbox):
    whatsapp_fake.post(
        PHONE_NUMBER_ID, whatsapp_fake.inbound_body(PHONE_NUMBER_ID, CUSTOMER, kind="image")
    )
    assert read(whatsapp, whatsapp_inbox) == CallbackRead()
    wamid = sent_text(whatsapp, whatsapp_fake)
    whatsapp_fake.post(PHONE_NUMBER_ID, whatsapp_fake.status_body(wamid, "deleted"))
    assert read(whatsapp, whatsapp_inbox) == CallbackRead()


def test_another_number_or_business_account_signed_alike_is_not_read(
    whatsapp, whatsapp_fake, whatsapp_inbox
):
    # a second number of the same Meta app (same app secret, same webhook URL)
    for number, business in (("109876543219999", BUSINESS_ACCOUNT_ID), ("109876543218888", "1")):
        whatsapp_fake.account(
            phone_number_id=number,
            business_account_id=business,
            display_phone_number="254700000999",
            access_token=ACCESS_TOKEN,
            app_secret=APP_SECRET,
            verify_token=VERIFY_TOKEN,
            webhook_url=whatsapp_inbox.url,
        )
        whatsapp_fake.customer_writes(number, CUSTOMER, "BAL")
        assert read(whatsapp, whatsapp_inbox) == CallbackRead()


def test_a_wrong_or_missing_signature_is_refused(whatsapp, whatsapp_fake, whatsapp_inbox):
    whatsapp_fake.customer_writes(PHONE_NUMBER_ID, CUSTOMER, "BAL")
    good = whatsapp_inbox.last()
    body, headers = FakeWhatsApp.signed({"entry": []}, "f" * 32)  # another app's secret
    for callback in (
        replace(good, body=body, headers=headers),
        replace(good, body=good.body.replace(b"BAL", b"PAY")),  # tampered on the way
        replace(good, headers={"Content-Type": "application/json"}),
    ):
        with pytest.raises(CallbackRefused) as refused:
            whatsapp.read_callback(callback)
        assert refused.value.problem == "signature_invalid"
    with pytest.raises(CallbackRefused):  # an account without its app secret checks nothing
        WhatsAppAdapter(replace(ACCOUNT, app_secret="")).read_callback(
            replace(good, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
        )


@pytest.mark.parametrize("body", [b"not json", b'"entry"', b'{"entry": 3}', b"\xff\xfe"])
def test_a_signed_body_that_is_not_the_webhooks_json_is_malformed(body):
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    callback = ProviderCallback(
        url="https://example.test/api/messaging/v1/whatsapp/lender-a/",
        method="POST",
        headers={"x-hub-signature-256": signature},  # any case, as a header may come
        body=body,
    )
    with pytest.raises(CallbackRefused) as refused:
        WhatsAppAdapter(ACCOUNT).read_callback(callback)
    assert refused.value.problem == "malformed"
