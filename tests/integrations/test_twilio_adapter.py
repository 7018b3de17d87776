"""Twilio's SMS adapter against a loopback fake speaking its documented requests, answers and
errors (Twilio's own client runs for real), and the callbacks it makes, signed with
X-Twilio-Signature as Twilio computes it."""

from dataclasses import replace

import pytest

from apps.integrations.messaging.base import (
    CallbackRefused,
    Channel,
    Delivery,
    Outbound,
    ProviderCallback,
)
from apps.integrations.messaging.registry import messaging_callback_url
from apps.integrations.messaging.twilio_sms import TwilioAccount, TwilioSmsAdapter
from tests.integrations.messaging import (
    PHONE,
    TWILIO_NUMBER,
    TWILIO_SERVICE,
    TWILIO_SID,
    TWILIO_TOKEN,
    send_refused,
)
from tools.fakes.twilio import signature

ACCOUNT = TwilioAccount(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, from_number=TWILIO_NUMBER)
TEXT = "Su pago de MXN 850 vence el 12 de marzo."


def adapter(**changes: str) -> TwilioSmsAdapter:
    return TwilioSmsAdapter(replace(ACCOUNT, **changes))


def status_url() -> str:
    return messaging_callback_url(provider="twilio", lender_slug="lender-a", route="delivery")


def test_a_text_goes_out_from_the_number_with_its_status_callback(twilio_fake, callback_receiver):
    sent = adapter().send(Outbound(to=PHONE, text=TEXT, status_url=status_url()))
    assert sent.provider_ref.startswith("SM")
    assert sent.delivery == Delivery.QUEUED
    message = twilio_fake.messages[sent.provider_ref]
    assert (message.to, message.body, message.from_, message.messaging_service_sid) == (
        PHONE,
        TEXT,
        TWILIO_NUMBER,
        "",
    )
    assert message.status_callback == status_url()


def test_through_a_messaging_service_twilio_picks_the_sender(twilio_fake):
    sent = adapter(from_number="", messaging_service_sid=TWILIO_SERVICE).send(
        Outbound(to=PHONE, text=TEXT)
    )
    assert sent.delivery == Delivery.QUEUED  # "accepted" by the service
    message = twilio_fake.messages[sent.provider_ref]
    assert (message.from_, message.messaging_service_sid, message.status) == (
        "",
        TWILIO_SERVICE,
        "accepted",
    )
    assert message.status_callback == ""  # the service's own status URL


def test_a_number_not_in_e164_is_an_invalid_number(twilio_fake):
    refused = send_refused(adapter(), to="0712345678")
    assert (refused.code, refused.retryable) == ("invalid_number", False)


# --- callbacks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "delivery"),
    [
        ("accepted", Delivery.QUEUED),
        ("queued", Delivery.QUEUED),
        ("sending", Delivery.SENT),
        ("sent", Delivery.SENT),
        ("delivered", Delivery.DELIVERED),
        ("read", Delivery.DELIVERED),
        ("undelivered", Delivery.FAILED),
        ("failed", Delivery.FAILED),
    ],
)
def test_each_status_callback_is_read_in_our_terms(
    twilio_fake, callback_receiver, status, delivery
):
    sent = adapter().send(Outbound(to=PHONE, text=TEXT, status_url=status_url()))
    twilio_fake.advance(sent.provider_ref, status, error_code=30005)
    [update] = adapter().read_callback(callback_receiver.last()).updates
    assert (update.provider, update.provider_ref, update.delivery) == (
        "twilio",
        sent.provider_ref,
        delivery,
    )
    assert update.error == ("30005" if delivery == Delivery.FAILED else "")


def inbound_url() -> str:
    return messaging_callback_url(provider="twilio", lender_slug="lender-a", route="inbound")


@pytest.mark.parametrize(
    ("opt_out_type", "opt_out"), [("", False), ("STOP", True), ("HELP", False)]
)
def test_an_incoming_text_is_read_and_twilios_stop_is_an_opt_out(
    twilio_fake, callback_receiver, opt_out_type, opt_out
):
    twilio_fake.incoming(
        inbound_url(),
        account_sid=TWILIO_SID,
        sender=PHONE,
        to=TWILIO_NUMBER,
        body="PARAR" if opt_out else "SALDO",
        opt_out_type=opt_out_type,
    )
    [inbound] = adapter().read_callback(callback_receiver.last()).inbound
    assert (inbound.provider, inbound.channel, inbound.sender, inbound.to) == (
        "twilio",
        Channel.SMS,
        PHONE,
        TWILIO_NUMBER,
    )
    assert inbound.text == ("PARAR" if opt_out else "SALDO")
    assert inbound.provider_ref == callback_receiver.last().fields["MessageSid"]
    assert inbound.opt_out is opt_out


def refused_problem(callback: ProviderCallback) -> str:
    with pytest.raises(CallbackRefused) as refused:
        adapter().read_callback(callback)
    return refused.value.problem


def test_a_callback_not_signed_by_the_accounts_token_is_refused(twilio_fake, callback_receiver):
    twilio_fake.incoming(
        inbound_url(), account_sid=TWILIO_SID, sender=PHONE, to=TWILIO_NUMBER, body="SALDO"
    )
    received = callback_receiver.last()
    assert adapter().read_callback(received).inbound  # as Twilio sent it
    tampered = replace(received, fields={**received.fields, "Body": "PROMESA 12/15"})
    assert refused_problem(tampered) == "signature_invalid"
    elsewhere = replace(received, url=received.url.replace("lender-a", "lender-b"))
    assert refused_problem(elsewhere) == "signature_invalid"
    unsigned = replace(received, headers={})
    assert refused_problem(unsigned) == "signature_invalid"
    foreign = signature("0" * 32, received.url, dict(received.fields))
    assert refused_problem(replace(received, headers={"X-Twilio-Signature": foreign})) == (
        "signature_invalid"
    )


@pytest.mark.parametrize(
    ("route", "fields"),
    [
        ("delivery", {"MessageSid": "SM1", "MessageStatus": "lost"}),  # not one of its statuses
        ("delivery", {"MessageStatus": "sent"}),  # no message
        ("inbound", {"MessageSid": "SM1", "From": PHONE}),  # no body
        ("optout", {"MessageSid": "SM1", "From": PHONE, "Body": "STOP"}),  # not a route we set
    ],
)
def test_a_signed_callback_that_is_not_what_its_route_sends_is_malformed(route, fields):
    url = inbound_url().replace("/inbound/", f"/{route}/")
    headers = {"x-twilio-signature": signature(TWILIO_TOKEN, url, fields)}  # any case
    callback = ProviderCallback(url=url, method="POST", headers=headers, body=b"", fields=fields)
    assert refused_problem(callback) == "malformed"
