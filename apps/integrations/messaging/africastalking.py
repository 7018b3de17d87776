"""Africa's Talking's SMS: send a text, read its delivery reports, incoming messages and bulk
SMS opt-outs, for one lender's app.

Africa's Talking's own client (``africastalking``): its SMS service builds the documented
request (``POST /version1/messaging``, form fields ``username``, ``to``, ``message``,
``from``, the ``apiKey`` header) and checks the number first. Two things of it are replaced
here, in ``_SmsService`` and nowhere else: its address, taken from
``AFRICASTALKING_API_BASE`` when set (a loopback fake in the tests and the demo), and its
transport. The client sends each call with ``requests.post`` (a new connection per message)
and keeps only the body of a refusal, not its HTTP status, which is what tells a rate limit
(429) and an outage (5xx) from bad credentials (401); the transport here reuses one
connection pool per thread and keeps the status.

Africa's Talking signs no callback: each of the lender's three callback addresses carries a
secret token in its path (``apps.integrations.payments.signing.path_token_for`` under this
provider's name), set once in the app's dashboard (SMS > SMS Callback URLs), and its last
path segment says which callback it is (``Route``). Documented shapes: developers.
africastalking.com (SMS: sending, delivery reports, incoming messages, bulk SMS opt-out).

Neither the number nor the text reaches a log or an error: a refusal carries Africa's
Talking's status name (``InvalidPhoneNumber`` becomes ``invalid_number``) and the HTTP
status, and is raised outside the handler of the client's error, whose message may quote
the number.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import requests
from africastalking.SMS import SMSService
from django.conf import settings
from requests.utils import get_environ_proxies

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
from apps.integrations.payments.signing import path_token_matches

PROVIDER = "africastalking"
TIMEOUT = (3.05, 9.05)  # seconds to connect, to read: the client's own


class Route(StrEnum):
    """The callbacks Africa's Talking makes, by the last segment of their path."""

    DELIVERY = "delivery"
    INBOUND = "inbound"
    OPTOUT = "optout"


# the send answer's statusCode per recipient: taken ...
ACCEPTED: dict[int, Delivery] = {
    100: Delivery.QUEUED,  # Processed
    101: Delivery.SENT,  # Sent
    102: Delivery.QUEUED,  # Queued
}
# ... or refused: our code (Africa's Talking's status name where we have none) and whether
# trying again later may succeed
REFUSED: dict[int, tuple[str, bool]] = {
    401: ("RiskHold", False),
    402: ("InvalidSenderId", False),
    403: ("invalid_number", False),  # InvalidPhoneNumber
    404: ("UnsupportedNumberType", False),
    405: ("InsufficientBalance", False),
    406: ("opted_out", False),  # UserInBlacklist
    407: ("CouldNotRoute", False),
    409: ("DoNotDisturbRejection", False),
    500: ("InternalServerError", True),
    501: ("GatewayError", True),
    502: ("RejectedByGateway", False),
}
# a delivery report's status: Sent (by Africa's Talking), Submitted (to the mobile network),
# Buffered (queued by the network); Success (on the handset); Failed, Rejected (final)
DELIVERY: dict[str, Delivery] = {
    "Sent": Delivery.SENT,
    "Submitted": Delivery.SENT,
    "Buffered": Delivery.SENT,
    "Success": Delivery.DELIVERED,
    "Failed": Delivery.FAILED,
    "Rejected": Delivery.FAILED,
}


class _Answered(Exception):
    """Africa's Talking answered outside 2xx (``status``), or a 2xx that is not JSON."""

    def __init__(self, status: int, *, readable: bool = True) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.readable = status, readable


_pools = threading.local()


def _session(url: str) -> requests.Session:
    """This thread's connection pool to Africa's Talking (a requests session is not shared
    between threads). The environment's proxy settings for its host are read once, not on
    every message (requests reads them, and the netrc file, per request otherwise)."""
    session: requests.Session | None = getattr(_pools, "session", None)
    if session is None:
        session = _pools.session = requests.Session()
        session.proxies = get_environ_proxies(url)
        session.trust_env = False
    return session


class _SmsService(SMSService):  # type: ignore[misc]  # the client ships no types
    """The client's SMS service, at ``AFRICASTALKING_API_BASE`` when set and with a transport
    that keeps the HTTP status (see the module's docstring)."""

    def _init_service(self) -> None:
        super()._init_service()
        base = str(settings.AFRICASTALKING_API_BASE).rstrip("/")
        if base:
            self._baseUrl = self._contentUrl = f"{base}/version1"

    def _make_request(
        self,
        url: str,
        method: str,
        headers: dict[str, str],
        data: dict[str, Any] | None,
        params: dict[str, Any] | None,
        callback: object = None,
        timeout: tuple[float, float] = TIMEOUT,
    ) -> Any:
        answer = _session(url).request(
            method, url, headers=headers, data=data, params=params, timeout=timeout
        )
        if not 200 <= answer.status_code < 300:
            raise _Answered(answer.status_code)
        try:
            return answer.json()
        except ValueError:
            raise _Answered(answer.status_code, readable=False) from None


@dataclass(frozen=True, slots=True)
class AfricasTalkingAccount:
    """A lender's Africa's Talking app (from its provider account): its username
    (``sandbox`` for the sandbox), API key and, optionally, its sender id or shortcode."""

    username: str
    api_key: str
    sender_id: str = ""


def _refusal_for_status(status: int) -> SendRefused:
    if status == 401:
        return SendRefused("auth_failed", retryable=False, status=status)
    if status == 429:
        return SendRefused("rate_limited", retryable=True, status=status)
    if status >= 500:
        return SendRefused("unreachable", retryable=True, status=status)
    return SendRefused(f"http_{status}", retryable=False, status=status)


def _sent(answer: Any) -> Sent:
    """The send answer for our one recipient, or the refusal it says."""
    try:
        data = answer["SMSMessageData"]
        recipients = data["Recipients"]
    except (KeyError, TypeError):
        raise SendRefused("unreadable_answer", retryable=False) from None
    if not recipients:  # refused as a whole: the reason is the Message ("InvalidSenderId")
        reason = str(data.get("Message") or "")
        raise SendRefused(reason if reason.isalpha() else "refused", retryable=False)
    recipient = recipients[0]
    try:
        code = int(recipient["statusCode"])
    except (KeyError, TypeError, ValueError):
        raise SendRefused("unreadable_answer", retryable=False) from None
    if code in ACCEPTED:
        return Sent(
            provider_ref=str(recipient.get("messageId") or ""),
            delivery=ACCEPTED[code],
            cost=str(recipient.get("cost") or ""),
        )
    name, retryable = REFUSED.get(code, (str(recipient.get("status") or code), False))
    raise SendRefused(name, retryable=retryable)


def _required(callback: ProviderCallback, *names: str) -> list[str]:
    values = [callback.fields.get(name) for name in names]
    if any(value is None for value in values):
        raise CallbackRefused("malformed")
    return [str(value) for value in values]


def _when(value: str) -> datetime | None:
    """Africa's Talking's ``date`` (ISO 8601, UTC when it names no zone), or None."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AfricasTalkingAdapter:
    """``MessagingAdapter`` for one lender's Africa's Talking app."""

    provider = PROVIDER
    channel = Channel.SMS

    def __init__(self, account: AfricasTalkingAccount, *, lender_slug: str) -> None:
        self.account, self.lender_slug = account, lender_slug
        self._sms = _SmsService(account.username, account.api_key)

    def send(self, message: Outbound) -> Sent:
        """Send ``message.text`` to ``message.to`` from the account's sender id (Africa's
        Talking's shared one when none is set). Delivery reports go to the address set in
        the dashboard: ``message.status_url`` is not sent."""
        refusal: SendRefused
        try:
            answer = self._sms.send(
                message.text,
                [message.to],
                sender_id=self.account.sender_id or None,
                timeout=TIMEOUT,
            )
        except _Answered as answered:
            refusal = (
                _refusal_for_status(answered.status)
                if answered.readable
                else SendRefused("unreadable_answer", retryable=False, status=answered.status)
            )
        except requests.RequestException:  # refused, reset, timed out
            refusal = SendRefused("unreachable", retryable=True)
        except ValueError:  # the client's own check of the number (its message quotes it)
            refusal = SendRefused("invalid_number", retryable=False)
        else:
            return _sent(answer)
        raise refusal  # outside the handler: the client's error is not chained to it

    def read_callback(self, callback: ProviderCallback) -> CallbackRead:
        """A delivery report, an incoming message or a bulk SMS opt-out (by the URL's last
        segment), from a path whose token is the lender's; ``CallbackRefused``
        (``token_invalid``, ``malformed``) otherwise."""
        if not path_token_matches(
            given=callback.path_token, lender_slug=self.lender_slug, provider=PROVIDER
        ):
            raise CallbackRefused("token_invalid")
        route = callback_route(callback.url)
        if route == Route.DELIVERY:
            ref, status = _required(callback, "id", "status")
            if status not in DELIVERY or not ref:
                raise CallbackRefused("malformed")
            delivery = DELIVERY[status]
            reason = callback.fields.get("failureReason") or ""
            update = DeliveryUpdate(
                provider=PROVIDER,
                provider_ref=ref,
                delivery=delivery,
                error=(reason or status) if delivery == Delivery.FAILED else "",
            )
            return CallbackRead(updates=(update,))
        if route == Route.INBOUND:
            sender, text, ref = _required(callback, "from", "text", "id")
            if not sender:
                raise CallbackRefused("malformed")
            inbound = InboundText(
                provider=PROVIDER,
                channel=Channel.SMS,
                sender=sender,
                text=text,
                provider_ref=ref,
                to=callback.fields.get("to", ""),
                at=_when(callback.fields.get("date", "")),
            )
            return CallbackRead(inbound=(inbound,))
        if route == Route.OPTOUT:
            sender_id, phone = _required(callback, "senderId", "phoneNumber")
            if not phone:
                raise CallbackRefused("malformed")
            opt_out = InboundText(
                provider=PROVIDER,
                channel=Channel.SMS,
                sender=phone,
                text="",
                provider_ref="",
                to=sender_id,
                opt_out=True,
            )
            return CallbackRead(inbound=(opt_out,))
        raise CallbackRefused("malformed")
