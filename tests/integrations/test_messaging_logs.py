"""No phone number and no message text reaches a log: not from the providers' clients (at
DEBUG), not from a refusal logged with its traceback (Twilio words its error with the
number; Africa's Talking's client its own check), not from reading a callback."""

import logging

import pytest

from apps.integrations.messaging.africastalking import (
    AfricasTalkingAccount,
    AfricasTalkingAdapter,
)
from apps.integrations.messaging.base import CallbackRefused, Outbound, SendRefused
from apps.integrations.messaging.registry import messaging_callback_url
from apps.integrations.messaging.twilio_sms import TwilioAccount, TwilioSmsAdapter
from tests.integrations.messaging import (
    AT_API_KEY,
    AT_SENDER_ID,
    AT_USERNAME,
    TWILIO_NUMBER,
    TWILIO_SID,
    TWILIO_TOKEN,
)

NUMBER = "+254798765432"
MALFORMED_NUMBER = "0798765432"
TEXT = "Wanjiru, your balance of KES 4,815 is overdue"
logger = logging.getLogger("tests.messaging")


def attempt(adapter, to: str) -> str:
    """Send as a notifications worker would, logging a refusal with its traceback; the
    refusal as a string."""
    try:
        adapter.send(Outbound(to=to, text=TEXT, status_url=""))
    except SendRefused as refused:
        logger.exception("message refused: %s", refused.code)
        return f"{refused!s} {refused!r}"
    return ""


def read(adapter, callback) -> None:
    try:
        adapter.read_callback(callback)
    except CallbackRefused:
        logger.exception("callback refused")


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("twilio", "urllib3", "requests"):  # quieter by our settings: not here
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_no_number_or_text_reaches_a_log(
    everything_logged, africastalking_fake, twilio_fake, callback_receiver
) -> None:
    at = AfricasTalkingAdapter(
        AfricasTalkingAccount(AT_USERNAME, AT_API_KEY, AT_SENDER_ID), lender_slug="lender-a"
    )
    tw = TwilioSmsAdapter(TwilioAccount(TWILIO_SID, TWILIO_TOKEN, from_number=TWILIO_NUMBER))
    refusals = [attempt(at, NUMBER), attempt(at, MALFORMED_NUMBER)]  # the client quotes it
    africastalking_fake.refuse(NUMBER, 406)
    refusals += [attempt(at, NUMBER), attempt(tw, NUMBER)]
    refusals.append(attempt(tw, MALFORMED_NUMBER))  # Twilio's 21211 quotes it
    twilio_fake.refuse(NUMBER, 21610)
    refusals.append(attempt(tw, NUMBER))
    assert [bool(r) for r in refusals] == [False, True, True, False, True, True]
    assert africastalking_fake.messages
    assert twilio_fake.messages

    def url(provider: str, route: str) -> str:
        return messaging_callback_url(provider=provider, lender_slug="lender-a", route=route)

    africastalking_fake.report(
        url("africastalking", "delivery"), africastalking_fake.messages[0].message_id
    )
    africastalking_fake.incoming(
        url("africastalking", "inbound"), sender=NUMBER, to="22384", text=TEXT
    )
    twilio_fake.incoming(
        url("twilio", "inbound"), account_sid=TWILIO_SID, sender=NUMBER, to=TWILIO_NUMBER, body=TEXT
    )
    at_report, at_inbound, tw_inbound = callback_receiver.received
    read(at, at_report)
    read(at, at_inbound)
    read(tw, tw_inbound)
    read(tw, at_inbound)  # refused: not signed

    logged = everything_logged.text
    assert "message refused: opted_out" in logged  # the log is on, and says what it may
    assert "callback refused" in logged
    for secret in (NUMBER, NUMBER[1:], MALFORMED_NUMBER, TEXT, AT_API_KEY, TWILIO_TOKEN):
        assert secret not in logged
        assert not any(secret in refusal for refusal in refusals)
