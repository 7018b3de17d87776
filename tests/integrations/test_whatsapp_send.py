"""Sending through the WhatsApp Cloud API, against the loopback fake: a text, an approved
template with its parameters, each of the API's refusals in our terms, the lender's adapter;
and no phone number, text or secret in a log along the way."""

import logging
import socket
from dataclasses import replace

import pytest

from apps.core.actor import Actor
from apps.integrations.messaging.base import Delivery, Outbound, SendRefused, TemplateCall
from apps.integrations.messaging.whatsapp import (
    WhatsAppAdapter,
    whatsapp_adapter_for,
)
from apps.integrations.services import provider_account_save
from tests.integrations.whatsapp import (
    ACCESS_TOKEN,
    ACCOUNT,
    APP_SECRET,
    CUSTOMER,
    PHONE_NUMBER_ID,
    SETTINGS,
    VERIFY_TOKEN,
    whatsapp_for,
)


def adapter(**changes: str) -> WhatsAppAdapter:
    """Lender A's adapter (built after the fake started: it reads WHATSAPP_API_BASE)."""
    return WhatsAppAdapter(replace(ACCOUNT, **changes))


REMINDER = TemplateCall("payment_reminder", "es_MX", ("Ana", "1,250.00 MXN"))


def test_a_text_is_sent_as_the_cloud_api_documents_it(whatsapp_fake) -> None:
    sent = adapter().send(Outbound(to=CUSTOMER, text="Your payment of KES 500 is due today."))
    assert sent.provider_ref.startswith("wamid.")
    assert sent.delivery == Delivery.QUEUED
    assert whatsapp_fake.paths == [f"/v21.0/{PHONE_NUMBER_ID}/messages"]
    assert whatsapp_fake.requests == [
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "254712345678",
            "type": "text",
            "text": {"preview_url": False, "body": "Your payment of KES 500 is due today."},
        }
    ]
    assert whatsapp_fake.sent[sent.provider_ref].to == "254712345678"


def test_a_template_goes_with_its_language_and_body_parameters(whatsapp_fake) -> None:
    sent = adapter().send(Outbound(to=CUSTOMER, text="(the reminder)", template=REMINDER))
    assert whatsapp_fake.requests[-1]["template"] == {
        "name": "payment_reminder",
        "language": {"code": "es_MX"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Ana"},
                    {"type": "text", "text": "1,250.00 MXN"},
                ],
            }
        ],
    }
    message = whatsapp_fake.sent[sent.provider_ref]
    assert (message.kind, message.template) == (
        "template",
        ("payment_reminder", "es_MX", ("Ana", "1,250.00 MXN")),
    )
    # a template without parameters goes without components
    adapter().send(Outbound(to=CUSTOMER, text="", template=TemplateCall("hello_world", "en_US")))
    assert "components" not in whatsapp_fake.requests[-1]["template"]


def refused(message: Outbound, account: WhatsAppAdapter | None = None) -> SendRefused:
    with pytest.raises(SendRefused) as caught:
        (account or adapter()).send(message)
    return caught.value


TEXT = Outbound(to=CUSTOMER, text="Hello")


@pytest.mark.parametrize(
    ("graph_code", "code", "status"),
    [(131026, "undeliverable", 400), (131047, "outside_window", 400)],
)
def test_a_number_the_api_refuses_is_not_tried_again(
    whatsapp_fake, graph_code, code, status
) -> None:
    whatsapp_fake.fail_number(CUSTOMER, graph_code)
    error = refused(TEXT)
    assert (error.code, error.retryable, error.status) == (code, False, status)


@pytest.mark.parametrize(("graph_code", "status"), [(130429, 429), (131056, 400), (80007, 400)])
def test_a_rate_limit_may_be_tried_again_later(whatsapp_fake, graph_code, status) -> None:
    whatsapp_fake.rate_limit(graph_code)
    error = refused(TEXT)
    assert (error.code, error.retryable, error.status) == ("rate_limited", True, status)
    assert adapter().send(TEXT).provider_ref  # the limit passed


def test_a_token_the_api_does_not_know_is_auth_failed(whatsapp_fake) -> None:
    error = refused(TEXT, adapter(access_token="EAAnotTheLendersToken000000000000"))
    assert (error.code, error.retryable, error.status) == ("auth_failed", False, 401)


@pytest.mark.parametrize(
    ("template", "status"),
    [
        (TemplateCall("payment_remindr", "es_MX", ("Ana", "1")), 404),  # no such name
        (TemplateCall("payment_reminder", "zh_CN", ("Ana", "1")), 404),  # not in that language
        (TemplateCall("payment_reminder", "en", ("Ana",)), 400),  # one parameter short
    ],
)
def test_a_template_the_account_has_not_approved_is_template_invalid(
    whatsapp_fake, template, status
) -> None:
    error = refused(Outbound(to=CUSTOMER, text="", template=template))
    assert (error.code, error.retryable, error.status) == ("template_invalid", False, status)
    assert whatsapp_fake.sent == {}


def test_a_bad_parameter_of_a_text_is_an_invalid_request(whatsapp_fake) -> None:
    error = refused(Outbound(to="+12", text="Hello"))
    assert (error.code, error.retryable, error.status) == ("invalid_request", False, 400)


def test_an_api_down_or_gone_or_slow_is_unreachable_and_retryable(whatsapp_fake) -> None:
    whatsapp_fake.down = True
    error = refused(TEXT)
    assert (error.code, error.retryable, error.status) == ("unreachable", True, 503)
    whatsapp_fake.down, whatsapp_fake.delay = False, 0.5
    slow = WhatsAppAdapter(adapter().account, timeout=0.1)
    error = refused(TEXT, slow)
    assert (error.code, error.retryable, error.status) == ("unreachable", True, None)
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = WhatsAppAdapter(adapter().account, base_url=f"http://127.0.0.1:{port}")
    error = refused(TEXT, gone)
    assert (error.code, error.retryable, error.status) == ("unreachable", True, None)


@pytest.mark.django_db
def test_the_lenders_account_in_use_gives_the_adapter(lender_a, lender_b, whatsapp_fake) -> None:
    assert whatsapp_adapter_for(lender_id=lender_a.pk) is None
    whatsapp_for(lender_a, graph_api_version="v22.0")
    found = whatsapp_adapter_for(lender_id=lender_a.pk)
    assert found is not None
    assert found.account == replace(ACCOUNT, api_version="v22.0")
    found.send(TEXT)
    assert whatsapp_fake.paths == [f"/v22.0/{PHONE_NUMBER_ID}/messages"]
    assert whatsapp_adapter_for(lender_id=lender_b.pk) is None  # another lender's, not B's


@pytest.mark.django_db
def test_an_account_not_in_use_gives_none_and_a_blank_version_the_default(lender_a) -> None:
    whatsapp_for(lender_a)
    found = whatsapp_adapter_for(lender_id=lender_a.pk)
    assert found is not None
    assert found.account.api_version == "v21.0"
    provider_account_save(
        lender_id=lender_a.pk,
        provider="whatsapp",
        enabled=False,
        settings=SETTINGS,
        secrets={},
        actor=Actor.system(),
    )
    assert whatsapp_adapter_for(lender_id=lender_a.pk) is None


@pytest.mark.django_db
def test_no_phone_number_text_or_secret_reaches_a_log(
    lender_a, whatsapp_fake, whatsapp_inbox, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    whatsapp_for(lender_a)
    adapter = whatsapp_adapter_for(lender_id=lender_a.pk)
    assert adapter is not None
    secret_text = "Pay 1,250 to paybill 174379, account SC-000042"
    whatsapp_fake.customer_writes(PHONE_NUMBER_ID, CUSTOMER, "PROMISE 12/15 my salary is late")
    adapter.read_callback(whatsapp_inbox.last())
    wamid = adapter.send(Outbound(to=CUSTOMER, text=secret_text)).provider_ref
    template = TemplateCall("payment_reminder", "en", ("Ana Wanjiru", "KES 1,250"))
    adapter.send(Outbound(to=CUSTOMER, text=secret_text, template=template))
    whatsapp_fake.settle(wamid, read=True)
    for callback in whatsapp_inbox.callbacks:
        adapter.read_callback(callback)
    for refusal in (131026, 131047):
        whatsapp_fake.fail_number(CUSTOMER, refusal)
        with pytest.raises(SendRefused):
            adapter.send(Outbound(to=CUSTOMER, text=secret_text))
    with pytest.raises(SendRefused):
        adapter.send(Outbound(to=CUSTOMER, text="", template=TemplateCall("nope", "en")))
    assert "whatsapp send refused: undeliverable" in caplog.text  # the logs say something
    for private in (
        CUSTOMER[1:],  # the number with or without its "+"
        secret_text,
        "my salary is late",
        "Ana Wanjiru",
        ACCESS_TOKEN,
        APP_SECRET,
        VERIFY_TOKEN,
    ):
        assert private not in caplog.text
