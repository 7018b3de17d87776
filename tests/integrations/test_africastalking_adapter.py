"""Africa's Talking's SMS adapter against a loopback fake speaking its documented requests,
answers and errors (Africa's Talking's own client runs for real), and the callbacks it makes
as they arrive at the lender's secret callback paths."""

from dataclasses import replace

import pytest

from apps.integrations.messaging.africastalking import (
    AfricasTalkingAccount,
    AfricasTalkingAdapter,
)
from apps.integrations.messaging.base import (
    CallbackRefused,
    Channel,
    Delivery,
    Outbound,
    ProviderCallback,
)
from apps.integrations.messaging.registry import messaging_callback_url
from tests.integrations.messaging import AT_API_KEY, AT_SENDER_ID, AT_USERNAME, PHONE, send_refused

ACCOUNT = AfricasTalkingAccount(username=AT_USERNAME, api_key=AT_API_KEY, sender_id=AT_SENDER_ID)
TEXT = "Your installment of KES 1,200 is due on 12 March."


def adapter(**changes: str) -> AfricasTalkingAdapter:
    return AfricasTalkingAdapter(replace(ACCOUNT, **changes), lender_slug="lender-a")


def test_a_text_goes_out_from_the_sender_id_and_comes_back_with_its_id(africastalking_fake):
    sent = adapter().send(Outbound(to=PHONE, text=TEXT))
    assert sent.provider_ref.startswith("ATXid_")
    assert sent.delivery == Delivery.SENT  # statusCode 101: sent by Africa's Talking
    assert sent.cost == "KES 0.8000"
    [message] = africastalking_fake.messages
    assert (message.username, message.to, message.text, message.sender_id) == (
        AT_USERNAME,
        PHONE,
        TEXT,
        AT_SENDER_ID,
    )
    assert message.message_id == sent.provider_ref


def test_without_a_sender_id_the_shared_sender_is_used(africastalking_fake):
    adapter(sender_id="").send(Outbound(to=PHONE, text=TEXT))
    assert africastalking_fake.messages[0].sender_id == ""


def test_a_sender_id_the_app_has_not_registered_refuses_the_message(africastalking_fake):
    refused = send_refused(adapter(sender_id="OTHERCO"))
    assert (refused.code, refused.retryable) == ("InvalidSenderId", False)
    assert not africastalking_fake.messages


@pytest.mark.parametrize(
    ("status_code", "code", "retryable"),
    [
        (404, "UnsupportedNumberType", False),
        (405, "InsufficientBalance", False),
        (409, "DoNotDisturbRejection", False),
        (500, "InternalServerError", True),
        (501, "GatewayError", True),
    ],
)
def test_a_recipient_refused_by_its_status_code_is_a_refusal(
    africastalking_fake, status_code, code, retryable
):
    africastalking_fake.refuse(PHONE, status_code)
    refused = send_refused(adapter())
    assert (refused.code, refused.retryable) == (code, retryable)
    assert not africastalking_fake.messages


def test_a_number_the_client_itself_refuses_is_never_sent(africastalking_fake):
    refused = send_refused(adapter(), to="0712345678")  # not in international format
    assert (refused.code, refused.retryable) == ("invalid_number", False)
    assert africastalking_fake.calls == 0


# --- callbacks ----------------------------------------------------------------------------


def sent_one(africastalking_fake) -> str:
    return adapter().send(Outbound(to=PHONE, text=TEXT)).provider_ref


@pytest.mark.parametrize(
    ("status", "delivery"),
    [
        ("Sent", Delivery.SENT),
        ("Submitted", Delivery.SENT),
        ("Buffered", Delivery.SENT),
        ("Success", Delivery.DELIVERED),
        ("Failed", Delivery.FAILED),
        ("Rejected", Delivery.FAILED),
    ],
)
def test_each_delivery_report_status_is_read_in_our_terms(
    africastalking_fake, callback_receiver, status, delivery
):
    ref = sent_one(africastalking_fake)
    url = messaging_callback_url(
        provider="africastalking", lender_slug="lender-a", route="delivery"
    )
    africastalking_fake.report(url, ref, status, failure_reason="UserIsInactive")
    [update] = adapter().read_callback(callback_receiver.last()).updates
    assert (update.provider, update.provider_ref, update.delivery) == (
        "africastalking",
        ref,
        delivery,
    )
    assert update.error == ("UserIsInactive" if delivery == Delivery.FAILED else "")


def test_an_incoming_text_is_read_with_its_sender_and_time(africastalking_fake, callback_receiver):
    url = messaging_callback_url(provider="africastalking", lender_slug="lender-a", route="inbound")
    africastalking_fake.incoming(url, sender=PHONE, to="22384", text="BAL")
    read = adapter().read_callback(callback_receiver.last())
    [inbound] = read.inbound
    assert not read.updates
    assert (inbound.channel, inbound.sender, inbound.to, inbound.text) == (
        Channel.SMS,
        PHONE,
        "22384",
        "BAL",
    )
    assert inbound.provider_ref == callback_receiver.last().fields["id"]
    assert inbound.at is not None
    assert inbound.at.tzinfo is not None
    assert not inbound.opt_out


def test_a_bulk_sms_opt_out_is_an_opt_out_whatever_the_words(
    africastalking_fake, callback_receiver
):
    url = messaging_callback_url(provider="africastalking", lender_slug="lender-a", route="optout")
    africastalking_fake.opt_out(url, sender_id=AT_SENDER_ID, phone=PHONE)
    [inbound] = adapter().read_callback(callback_receiver.last()).inbound
    assert inbound.opt_out
    assert (inbound.sender, inbound.to, inbound.text) == (PHONE, AT_SENDER_ID, "")


def refused_problem(callback: ProviderCallback, slug: str = "lender-a") -> str:
    with pytest.raises(CallbackRefused) as refused:
        AfricasTalkingAdapter(ACCOUNT, lender_slug=slug).read_callback(callback)
    return refused.value.problem


def test_a_callback_without_the_lenders_token_is_refused(africastalking_fake, callback_receiver):
    ref = sent_one(africastalking_fake)
    url = messaging_callback_url(
        provider="africastalking", lender_slug="lender-a", route="delivery"
    )
    africastalking_fake.report(url, ref)
    received = callback_receiver.last()
    assert refused_problem(received, slug="lender-b") == "token_invalid"  # another lender's
    token = received.path_token
    altered = token[:-1] + ("1" if token.endswith("0") else "0")
    assert refused_problem(replace(received, path_token=altered)) == "token_invalid"
    assert refused_problem(replace(received, path_token="")) == "token_invalid"


@pytest.mark.parametrize(
    ("route", "fields"),
    [
        ("delivery", {"status": "Success"}),  # no id
        ("delivery", {"id": "ATXid_1", "status": "Delivered"}),  # not one of its statuses
        ("inbound", {"from": PHONE, "id": "1"}),  # no text
        ("optout", {"senderId": AT_SENDER_ID}),  # no number
        ("subscription", {"phoneNumber": PHONE}),  # not a route we set
    ],
)
def test_a_callback_that_is_not_what_its_route_sends_is_malformed(route, fields):
    url = messaging_callback_url(provider="africastalking", lender_slug="lender-a", route="inbound")
    callback = ProviderCallback(
        url=url.replace("/inbound/", f"/{route}/"),
        method="POST",
        headers={},
        body=b"",
        fields=fields,
        path_token=url.split("/")[-3],
    )
    assert refused_problem(callback) == "malformed"
