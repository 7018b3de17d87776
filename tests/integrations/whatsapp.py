"""A lender with a WhatsApp business number, against the loopback Cloud API: the fixtures, the
lender's account, and a loopback endpoint that takes the webhooks Meta sends (as the product's
view will) and hands each on as the ``ProviderCallback`` the adapter reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from apps.core.actor import Actor
from apps.integrations.messaging.base import ProviderCallback
from apps.integrations.messaging.whatsapp import WhatsAppAccount
from apps.integrations.services import provider_account_save
from apps.lenders.models import Lender
from tools.fakes.whatsapp import FakeWhatsApp

PHONE_NUMBER_ID = "109876543210987"
BUSINESS_ACCOUNT_ID = "102938475610293"
DISPLAY_NUMBER = "254700000100"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBAKlenderA0demo0token0000000000"
APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "verify-lender-a-0001"
# approved templates: (name, language) -> number of body parameters
TEMPLATES = {
    ("payment_reminder", "en"): 2,
    ("payment_reminder", "es_MX"): 2,
    ("payment_receipt", "en"): 1,
    ("hello_world", "en_US"): 0,
}
CUSTOMER = "+254712345678"
# the lender's provider account as typed in the back office, and the adapter's account
SETTINGS = {"phone_number_id": PHONE_NUMBER_ID, "business_account_id": BUSINESS_ACCOUNT_ID}
SECRETS = {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}
ACCOUNT = WhatsAppAccount(**SETTINGS, **SECRETS)


@dataclass
class Inbox:
    """Requests the loopback endpoint took, as ProviderCallbacks (oldest first)."""

    url: str = ""
    callbacks: list[ProviderCallback] = field(default_factory=list)

    def last(self) -> ProviderCallback:
        return self.callbacks[-1]


@pytest.fixture
def whatsapp_inbox() -> Iterator[Inbox]:
    """A loopback endpoint answering 200 to whatever comes, keeping each request."""
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def _keep(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            inbox.callbacks.append(
                ProviderCallback(
                    url=f"http://127.0.0.1:{server.server_address[1]}{self.path}",
                    method=method,
                    headers=dict(self.headers.items()),
                    body=body,
                    fields=dict(parse_qsl(url.query)),
                )
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self._keep("GET")

        def do_POST(self) -> None:
            self._keep("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    inbox.url = f"http://127.0.0.1:{server.server_address[1]}/webhook/"
    yield inbox
    server.shutdown()
    server.server_close()


@pytest.fixture
def whatsapp_fake(settings, whatsapp_inbox: Inbox) -> Iterator[FakeWhatsApp]:
    """The loopback Cloud API with lender A's number, its webhooks going to the inbox."""
    fake = FakeWhatsApp()
    fake.account(
        phone_number_id=PHONE_NUMBER_ID,
        business_account_id=BUSINESS_ACCOUNT_ID,
        display_phone_number=DISPLAY_NUMBER,
        access_token=ACCESS_TOKEN,
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        templates=TEMPLATES,
        webhook_url=whatsapp_inbox.url,
    )
    settings.WHATSAPP_API_BASE = fake.start()
    yield fake
    fake.stop()


def whatsapp_for(lender: Lender, **settings: str) -> None:
    """The lender's WhatsApp account in use, with the fake's number and secrets."""
    provider_account_save(
        lender_id=lender.pk,
        provider="whatsapp",
        enabled=True,
        settings={**SETTINGS, **settings},
        secrets=SECRETS,
        actor=Actor.system(),
    )
