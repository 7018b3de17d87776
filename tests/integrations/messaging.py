"""The SMS providers against their loopback fakes: fixtures that start Africa's Talking and
Twilio (the official clients aimed at them), a lender's account with each, and a loopback
receiver standing where the product's callback endpoints are, which hands back each callback
a provider made as the ``ProviderCallback`` the endpoint reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from apps.core.actor import Actor
from apps.integrations.messaging.base import (
    MessagingAdapter,
    Outbound,
    ProviderCallback,
    SendRefused,
)
from apps.integrations.messaging.paths import PATH_PREFIX
from apps.integrations.services import provider_account_save
from apps.lenders.models import Lender
from tools.fakes.africastalking import FakeAfricasTalking
from tools.fakes.loopback import address, form_fields, serve_posts
from tools.fakes.twilio import FakeTwilio

AT_USERNAME = "smartcollection"
AT_API_KEY = "atsk_4f1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c"
AT_SENDER_ID = "SMARTCOL"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "fedcba9876543210" * 2
TWILIO_NUMBER = "+15005550006"
TWILIO_SERVICE = "MG" + "00112233445566778899aabbccddeeff"
PHONE = "+254712345678"


def send_refused(adapter: MessagingAdapter, *, to: str = PHONE, text: str = "Hello") -> SendRefused:
    """The refusal of a message ``adapter`` is asked to send."""
    with pytest.raises(SendRefused) as refused:
        adapter.send(Outbound(to=to, text=text))
    return refused.value


@pytest.fixture
def africastalking_fake(settings) -> Iterator[FakeAfricasTalking]:
    fake = FakeAfricasTalking()
    fake.app(username=AT_USERNAME, api_key=AT_API_KEY, sender_ids=(AT_SENDER_ID,))
    settings.AFRICASTALKING_API_BASE = fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_fake(settings) -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    fake.account(sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    settings.TWILIO_API_BASE = fake.start()
    yield fake
    fake.stop()


def africastalking_for(lender: Lender, *, enabled: bool = True, sender_id: str = AT_SENDER_ID):
    return provider_account_save(
        lender_id=lender.pk,
        provider="africastalking",
        enabled=enabled,
        settings={"username": AT_USERNAME, "sender_id": sender_id},
        secrets={"api_key": AT_API_KEY},
        actor=Actor.system(),
    )


def twilio_for(lender: Lender, *, enabled: bool = True, **settings: str):
    return provider_account_save(
        lender_id=lender.pk,
        provider="twilio",
        enabled=enabled,
        settings={"account_sid": TWILIO_SID, "from_number": TWILIO_NUMBER, **settings},
        secrets={"auth_token": TWILIO_TOKEN},
        actor=Actor.system(),
    )


@dataclass
class CallbackReceiver:
    """Stands at the product's public address: answers 200 to every post and keeps each as
    the ``ProviderCallback`` a callback endpoint builds (the full URL posted to, the headers,
    the raw body, the form fields, and the path's token where the path carries one)."""

    base_url: str = ""
    received: list[ProviderCallback] = field(default_factory=list)

    def last(self) -> ProviderCallback:
        return self.received[-1]


def as_callback(url: str, headers: dict[str, str], body: bytes) -> ProviderCallback:
    segments = urlsplit(url).path.removeprefix(PATH_PREFIX).strip("/").split("/")
    return ProviderCallback(
        url=url,
        method="POST",
        headers=headers,
        body=body,
        fields=form_fields(body),
        path_token=segments[2] if len(segments) == 4 else "",
    )


@pytest.fixture
def callback_receiver(settings) -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()

    def answer(path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        receiver.received.append(as_callback(f"{receiver.base_url}{path}", dict(headers), body))
        return 200, b"", ""

    server = serve_posts(answer)
    receiver.base_url = settings.PAYMENTS_CALLBACK_BASE_URL = address(server)
    yield receiver
    server.shutdown()
    server.server_close()
