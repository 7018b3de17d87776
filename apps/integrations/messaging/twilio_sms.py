"""Twilio's SMS: send a text (Programmable Messaging's Message resource), read its status
callbacks and incoming messages, for one lender's account.

Twilio's own client (``twilio``), one ``Client`` per account with the account's SID and auth
token; the client's environment is not read (``TWILIO_EDGE`` or ``TWILIO_REGION`` in the
process's environment would move every lender's calls). Its HTTP client is the one place the
address changes: ``_HttpClient`` sends what the client addresses to ``https://api.twilio.com``
to ``TWILIO_API_BASE`` when set (a loopback fake in the tests and the demo), over one
connection pool per thread.

A message goes from the account's number (``from_number``) or through its Messaging Service
(``messaging_service_sid``: Twilio picks the sender), with ``StatusCallback`` set to
``Outbound.status_url``. Twilio signs every callback: ``X-Twilio-Signature`` is the base64
HMAC-SHA1, under the auth token, of the full URL followed by each form field's name and
value in name order, checked by the client's ``RequestValidator``. Incoming messages come
to the number's (or the Messaging Service's) "a message comes in" webhook; with Advanced
Opt-Out, a STOP carries ``OptOutType=STOP``. Documented shapes: twilio.com/docs/messaging
(Message resource, outbound message status in status callbacks, webhook request, error
dictionary).

Neither the number nor the text reaches a log or an error: Twilio's error message quotes
the number, so a refusal carries only Twilio's error code and the HTTP status, and is
raised outside the handler of the client's error. The client logs each call's method, URL
(the account SID) and headers at INFO, never its form.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from django.conf import settings
from twilio.base import values
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from apps.integrations.messaging.base import (
    CallbackRead,
    CallbackRefused,
    Channel,
    Delivery,
    DeliveryUpdate,
    InboundText,
    Outbound,
    ProviderCallback,
    SendRefused,
    Sent,
)
from apps.integrations.messaging.paths import callback_route

PROVIDER = "twilio"
API_HOST = "https://api.twilio.com"
SIGNATURE_HEADER = "X-Twilio-Signature"
TIMEOUT = 10.0  # seconds per call


class Route(StrEnum):
    """The callbacks Twilio makes, by the last segment of their path (an opt-out comes as
    an incoming message)."""

    DELIVERY = "delivery"
    INBOUND = "inbound"


# a Message's status, in its answer and its status callbacks
STATUSES: dict[str, Delivery] = {
    "accepted": Delivery.QUEUED,  # taken by a Messaging Service
    "scheduled": Delivery.QUEUED,
    "queued": Delivery.QUEUED,
    "sending": Delivery.SENT,
    "sent": Delivery.SENT,
    "delivered": Delivery.DELIVERED,
    "read": Delivery.DELIVERED,
    "undelivered": Delivery.FAILED,
    "failed": Delivery.FAILED,
    "canceled": Delivery.FAILED,
}
# Twilio's error codes we name, and whether trying again later may succeed
REFUSED: dict[int, tuple[str, bool]] = {
    21211: ("invalid_number", False),  # invalid 'To' phone number
    21614: ("invalid_number", False),  # 'To' number is not a valid mobile number
    21610: ("opted_out", False),  # the recipient replied STOP
    20429: ("rate_limited", True),  # too many requests
    20003: ("auth_failed", False),  # authentication error
}


def api_address(url: str) -> str:
    """``url`` as the client built it, at ``TWILIO_API_BASE`` when that is set."""
    base = str(settings.TWILIO_API_BASE).rstrip("/")
    if base and url.startswith(API_HOST):
        return base + url[len(API_HOST) :]
    return url


class _HttpClient(TwilioHttpClient):  # type: ignore[misc]  # the client ships no types
    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            api_address(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


_pools = threading.local()


def _http_client() -> _HttpClient:
    """This thread's HTTP client (its connection pool is not shared between threads)."""
    client: _HttpClient | None = getattr(_pools, "client", None)
    if client is None:
        client = _pools.client = _HttpClient(timeout=TIMEOUT)
    return client


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    """A lender's Twilio account (from its provider account): its SID and auth token, and
    the number it sends from or the Messaging Service it sends through."""

    account_sid: str
    auth_token: str
    from_number: str = ""
    messaging_service_sid: str = ""


def twilio_client(account: TwilioAccount) -> Client:
    """Twilio's client for ``account``, on this thread's HTTP client, its environment unread."""
    return Client(
        username=account.account_sid,
        password=account.auth_token,
        account_sid=account.account_sid,
        http_client=_http_client(),
        environment={},
    )


def _refusal(status: int, code: int | None) -> SendRefused:
    if code in REFUSED:
        name, retryable = REFUSED[code]
        return SendRefused(name, retryable=retryable, status=status)
    if status == 401:
        return SendRefused("auth_failed", retryable=False, status=status)
    if status == 429:
        return SendRefused("rate_limited", retryable=True, status=status)
    if status >= 500:
        return SendRefused("unreachable", retryable=True, status=status)
    return SendRefused(str(code or f"http_{status}"), retryable=False, status=status)


def _header(headers: Any, name: str) -> str:
    """``name``'s value in ``headers``, whatever their case."""
    if name in headers:
        return str(headers[name])
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == wanted), "")


class TwilioSmsAdapter:
    """``MessagingAdapter`` for one lender's Twilio account."""

    provider = PROVIDER
    channel = Channel.SMS

    def __init__(self, account: TwilioAccount) -> None:
        self.account = account
        self._client = twilio_client(account)

    def send(self, message: Outbound) -> Sent:
        """Send ``message.text`` to ``message.to`` from the account's number or Messaging
        Service; Twilio reports its delivery to ``message.status_url`` (to the Messaging
        Service's own status URL when that is empty)."""
        refusal: SendRefused
        try:
            created = self._client.messages.create(
                to=message.to,
                body=message.text,
                from_=self.account.from_number or values.unset,
                messaging_service_sid=self.account.messaging_service_sid or values.unset,
                status_callback=message.status_url or values.unset,
            )
        except (TwilioRestException, TwilioServiceException) as error:
            refusal = _refusal(int(error.status), error.code)
        except requests.RequestException:  # refused, reset, timed out
            refusal = SendRefused("unreachable", retryable=True)
        else:
            price = f"{created.price} {(created.price_unit or '').upper()}".strip()
            return Sent(
                provider_ref=str(created.sid),
                delivery=STATUSES.get(str(created.status), Delivery.QUEUED),
                error=str(created.error_code or ""),
                cost=price if created.price else "",
            )
        raise refusal  # outside the handler: the client's error is not chained to it

    def read_callback(self, callback: ProviderCallback) -> CallbackRead:
        """A status callback or an incoming message (by the URL's last segment), signed by
        Twilio with the account's auth token over ``callback.url`` and its form fields;
        ``CallbackRefused`` (``signature_invalid``, ``malformed``) otherwise."""
        signature = _header(callback.headers, SIGNATURE_HEADER)
        fields = dict(callback.fields)
        if not signature or not RequestValidator(self.account.auth_token).validate(
            callback.url, fields, signature
        ):
            raise CallbackRefused("signature_invalid")
        route = callback_route(callback.url)
        if route == Route.DELIVERY:
            ref = fields.get("MessageSid") or fields.get("SmsSid") or ""
            status = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
            if not ref or status not in STATUSES:
                raise CallbackRefused("malformed")
            update = DeliveryUpdate(
                provider=PROVIDER,
                provider_ref=ref,
                delivery=STATUSES[status],
                error=fields.get("ErrorCode") or "",
            )
            return CallbackRead(updates=(update,))
        if route == Route.INBOUND:
            sender, ref = fields.get("From") or "", fields.get("MessageSid") or ""
            if not sender or not ref or "Body" not in fields:
                raise CallbackRefused("malformed")
            inbound = InboundText(
                provider=PROVIDER,
                channel=Channel.SMS,
                sender=sender,
                text=fields["Body"],
                provider_ref=ref,
                to=fields.get("To") or "",
                opt_out=fields.get("OptOutType", "").upper() == "STOP",
            )
            return CallbackRead(inbound=(inbound,))
        raise CallbackRefused("malformed")
