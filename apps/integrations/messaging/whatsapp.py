"""WhatsApp Business through Meta's Cloud API, for one lender's business phone number: send a
text or an approved template, read the webhook (the verify-token handshake, delivery statuses,
the customer's messages).

Plain ``requests``, already one of the product's clients: the Cloud API is one JSON call
(``POST /{version}/{phone-number-id}/messages``) and one webhook. The Python wrappers of it
(pywa) fix the Graph API's address in their constructor, log each request's body (the number
and the text) at DEBUG, and read webhooks through a handler framework meant for a Flask or
FastAPI server of its own; none of it would take work off ours.

Documented shapes (developers.facebook.com, WhatsApp Cloud API: Messages, Webhooks, Error
codes):

* a send is answered ``{"messaging_product": "whatsapp", "contacts": [{"input", "wa_id"}],
  "messages": [{"id": "wamid...."}]}``, a refusal ``{"error": {"message", "type", "code",
  "error_data": {"details"}, "fbtrace_id"}}`` with the HTTP status the code documents;
* the webhook's verification is a GET with ``hub.mode=subscribe``, ``hub.verify_token`` (the
  token typed in the app's settings) and ``hub.challenge``, answered with the challenge;
* each POST is signed ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the
  app secret>`` and carries ``entry[].changes[].value`` with ``statuses[]`` (sent, delivered,
  read, failed with ``errors[]``) and ``messages[]`` (what the customer wrote or tapped).

A change for another business account or another phone number than the lender's is ignored:
an app secret may sign the webhooks of several numbers, and one lender never reads another's.

No phone number, text or secret reaches a log or an exception: a refusal carries our code and
the HTTP status only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import requests
from django.conf import settings

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
    TemplateCall,
)
from apps.integrations.models import ProviderAccount
from apps.integrations.payments.credentials import unseal
from apps.integrations.payments.registry import callback_base_url
from apps.integrations.selectors import provider_account_in_use

logger = logging.getLogger(__name__)

WHATSAPP = ProviderAccount.Provider.WHATSAPP.value
DEFAULT_API_VERSION = "v21.0"
# the template language each of the product's languages is sent in
TEMPLATE_LANGUAGES = {"en": "en", "es": "es", "zh-hans": "zh_CN"}
TIMEOUT = 15  # seconds per call
SIGNATURE_HEADER = "x-hub-signature-256"
# where Meta posts the lender's webhooks (the view is apps.notifications')
WEBHOOK_PATH = "/api/messaging/v1/whatsapp/{lender_slug}/"

# the Graph API's error codes (WhatsApp Cloud API: Error codes) as our codes
UNDELIVERABLE = 131026  # not a WhatsApp number, terms not accepted, an old client
OUTSIDE_WINDOW = 131047  # more than 24 hours since the customer last wrote: a template only
RATE_LIMITS = frozenset(
    {
        4,  # the app's call rate
        80007,  # the business account's rate
        130429,  # the phone number's throughput
        131056,  # too many messages to one customer in a short time
    }
)
AUTH_FAILURES = frozenset({0, 190})  # AuthException; the access token expired or revoked
INVALID_PARAMETER = 100
TEMPLATE_ERRORS = frozenset(
    {
        132000,  # the number of parameters does not match the template's
        132001,  # no such template in that language
        132005,  # the text with its parameters is too long
        132007,  # the template breaks a policy
        132012,  # a parameter of the wrong format
        132015,  # the template is paused
        132016,  # the template is disabled
    }
)


def refusal_code(code: int | None, *, template: bool = False) -> tuple[str, bool]:
    """Our code for the Graph API's error ``code`` and whether trying again later may succeed
    (``template``: the message was a template, where an invalid parameter is one of its)."""
    if code == UNDELIVERABLE:
        return "undeliverable", False
    if code == OUTSIDE_WINDOW:
        return "outside_window", False
    if code in RATE_LIMITS:
        return "rate_limited", True
    if code in AUTH_FAILURES:
        return "auth_failed", False
    if code in TEMPLATE_ERRORS or (template and code == INVALID_PARAMETER):
        return "template_invalid", False
    if code == INVALID_PARAMETER:
        return "invalid_request", False
    return (str(code) if code is not None else "refused"), False


@dataclass(frozen=True, slots=True)
class WhatsAppAccount:
    """A lender's WhatsApp business phone number (from its provider account)."""

    phone_number_id: str
    business_account_id: str
    # kept out of the repr: an account in a traceback or an error report shows no secret
    access_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    verify_token: str = field(repr=False)
    api_version: str = DEFAULT_API_VERSION
    # the approved template every message goes as, its text the one parameter ("": free text)
    template_name: str = ""


class WhatsAppAdapter:
    """``MessagingAdapter`` of the WhatsApp Cloud API for one business phone number."""

    provider = WHATSAPP
    channel = Channel.WHATSAPP

    def __init__(
        self,
        account: WhatsAppAccount,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.account = account
        self.base_url = (base_url or settings.WHATSAPP_API_BASE).rstrip("/")
        self.http = session or requests.Session()
        self.timeout = timeout

    # --- sending ----------------------------------------------------------------------

    def send(self, message: Outbound) -> Sent:
        """Send ``message``: its template when it has one (the only message allowed more than
        24 hours after the customer last wrote), else its text. ``SendRefused`` with our code:
        ``undeliverable``, ``outside_window``, ``template_invalid``, ``invalid_request``,
        ``auth_failed`` (none retryable), ``rate_limited``, ``unreachable`` (retryable)."""
        if message.template is None and self.account.template_name:
            message = replace(message, template=self._as_template(message))
        payload = self._payload(message)
        url = f"{self.base_url}/{self.account.api_version}/{self.account.phone_number_id}/messages"
        try:
            answer = self.http.post(
                url,
                json=payload,
                headers={"Authorization": f"Bearer {self.account.access_token}"},
                timeout=self.timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            logger.warning("whatsapp send: unreachable (%s)", type(exc).__name__)
            raise SendRefused("unreachable", retryable=True) from None
        if answer.status_code >= 400:
            raise self._refused(answer, template=message.template is not None)
        try:
            wamid = str(answer.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            # taken (a 2xx) yet no id to follow it by: sending again could send it twice
            logger.warning("whatsapp send: no message id in a %s answer", answer.status_code)
            raise SendRefused(
                "malformed_answer", retryable=False, status=answer.status_code
            ) from None
        return Sent(provider_ref=wamid, delivery=Delivery.QUEUED)

    def _as_template(self, message: Outbound) -> TemplateCall:
        """``message``'s text as the one parameter of the account's template, in the
        customer's language (a parameter may hold no line break, tab or run of spaces)."""
        language = TEMPLATE_LANGUAGES.get(message.language, TEMPLATE_LANGUAGES["en"])
        return TemplateCall(self.account.template_name, language, (" ".join(message.text.split()),))

    @staticmethod
    def _payload(message: Outbound) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.removeprefix("+"),
        }
        call = message.template
        if call is None:
            payload["type"] = "text"
            payload["text"] = {"preview_url": False, "body": message.text}
            return payload
        template: dict[str, Any] = {"name": call.name, "language": {"code": call.language}}
        if call.parameters:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in call.parameters],
                }
            ]
        payload["type"] = "template"
        payload["template"] = template
        return payload

    @staticmethod
    def _refused(answer: requests.Response, *, template: bool) -> SendRefused:
        status = answer.status_code
        try:
            error = answer.json()["error"]
            code: int | None = int(error["code"])
        except (ValueError, KeyError, TypeError):
            code = None
        if status >= 500:
            mine, retryable = "unreachable", True
        elif status == 429:
            mine, retryable = "rate_limited", True
        elif status == 401:
            mine, retryable = "auth_failed", False
        else:
            mine, retryable = refusal_code(code, template=template)
        logger.warning("whatsapp send refused: %s (graph code %s, HTTP %s)", mine, code, status)
        return SendRefused(mine, retryable=retryable, status=status)

    # --- the webhook ------------------------------------------------------------------

    def read_callback(self, callback: ProviderCallback) -> CallbackRead:
        """The verify-token handshake (a GET: ``challenge`` to echo, or ``token_invalid``), or a
        signed POST read into delivery updates and the customer's texts (``signature_invalid``
        unless signed with the app secret; ``malformed`` for a body that is not the webhook's
        JSON)."""
        if callback.method.upper() == "GET":
            return self._handshake(callback.fields)
        self._verify_signature(callback)
        try:
            body = json.loads(callback.body)
        except (ValueError, UnicodeDecodeError):
            raise CallbackRefused("malformed") from None
        if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
            raise CallbackRefused("malformed")
        updates: list[DeliveryUpdate] = []
        inbound: list[InboundText] = []
        for value in self._values(body["entry"]):
            updates.extend(self._statuses(value))
            inbound.extend(self._messages(value))
        return CallbackRead(updates=tuple(updates), inbound=tuple(inbound))

    def _handshake(self, fields: Mapping[str, str]) -> CallbackRead:
        token, mine = fields.get("hub.verify_token", ""), self.account.verify_token
        if (
            fields.get("hub.mode") != "subscribe"
            or not mine
            or not hmac.compare_digest(token.encode(), mine.encode())
        ):
            raise CallbackRefused("token_invalid")
        return CallbackRead(challenge=fields.get("hub.challenge", ""))

    def _verify_signature(self, callback: ProviderCallback) -> None:
        given = next((v for k, v in callback.headers.items() if k.lower() == SIGNATURE_HEADER), "")
        expected = hmac.new(
            self.account.app_secret.encode(), callback.body, hashlib.sha256
        ).hexdigest()
        # an account without its app secret verifies nothing: anyone can sign with an empty key
        if not self.account.app_secret or not hmac.compare_digest(
            given.encode(), f"sha256={expected}".encode()
        ):
            raise CallbackRefused("signature_invalid")

    def _values(self, entries: list[Any]) -> Iterator[dict[str, Any]]:
        """Each change's ``value`` of the lender's business account and phone number."""
        for entry in entries:
            if not isinstance(entry, dict) or str(entry.get("id")) != (
                self.account.business_account_id
            ):
                continue
            for change in entry.get("changes") or ():
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict) or change.get("field") != "messages":
                    continue
                metadata = value.get("metadata") or {}
                if str(metadata.get("phone_number_id")) != self.account.phone_number_id:
                    continue
                yield value

    def _statuses(self, value: dict[str, Any]) -> Iterator[DeliveryUpdate]:
        for status in value.get("statuses") or ():
            if not isinstance(status, dict) or not status.get("id"):
                continue
            delivery = STATUSES.get(str(status.get("status")))
            if delivery is None:
                continue
            error = ""
            if delivery is Delivery.FAILED:
                errors = status.get("errors") or [{}]
                code = errors[0].get("code") if isinstance(errors[0], dict) else None
                error = refusal_code(_int(code))[0]
            yield DeliveryUpdate(
                provider=WHATSAPP,
                provider_ref=str(status["id"]),
                delivery=delivery,
                error=error,
                at=_moment(status.get("timestamp")),
            )

    def _messages(self, value: dict[str, Any]) -> Iterator[InboundText]:
        business = str((value.get("metadata") or {}).get("display_phone_number") or "")
        for message in value.get("messages") or ():
            if not isinstance(message, dict):
                continue
            sender, text = str(message.get("from") or ""), _text_of(message)
            if not sender.isdigit() or not message.get("id") or text is None:
                continue  # an image, a location, a reaction, a system notice: not for us
            yield InboundText(
                provider=WHATSAPP,
                channel=Channel.WHATSAPP,
                sender=f"+{sender}",
                text=text,
                provider_ref=str(message["id"]),
                to=f"+{business}" if business.isdigit() else "",
                at=_moment(message.get("timestamp")),
            )


# a status callback's ``status`` in our terms: a message read was delivered
STATUSES: Mapping[str, Delivery] = {
    "sent": Delivery.SENT,
    "delivered": Delivery.DELIVERED,
    "read": Delivery.DELIVERED,
    "failed": Delivery.FAILED,
}


def _text_of(message: dict[str, Any]) -> str | None:
    """What the customer wrote or tapped: a text's body, a template's quick-reply button's
    text, an interactive reply's title; None for anything else."""
    kind = message.get("type")
    part = message.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return None
    if kind == "text":
        body = part.get("body")
    elif kind == "button":
        body = part.get("text")
    elif kind == "interactive":
        reply = part.get(part.get("type")) if isinstance(part.get("type"), str) else None
        body = reply.get("title") if isinstance(reply, dict) else None
    else:
        return None
    return body if isinstance(body, str) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _moment(timestamp: Any) -> datetime | None:
    """The webhook's Unix seconds as an aware datetime (None when absent or not a number)."""
    seconds = _int(timestamp)
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds is not None else None


def whatsapp_webhook_url(*, lender_slug: str) -> str:
    """The public address of the lender's WhatsApp webhook: what to type as the callback URL
    in the Meta app's WhatsApp configuration (with the account's verify token)."""
    return f"{callback_base_url()}{WEBHOOK_PATH.format(lender_slug=lender_slug)}"


def whatsapp_adapter_for(*, lender_id: int) -> WhatsAppAdapter | None:
    """The adapter of the lender's WhatsApp account in use, its secrets opened (None when the
    lender has none in use; CredentialsUnreadable when no configured key opens them)."""
    account = provider_account_in_use(lender_id=lender_id, provider=WHATSAPP)
    return whatsapp_adapter_of(account) if account is not None else None


def whatsapp_adapter_of(account: ProviderAccount) -> WhatsAppAdapter:
    """The adapter of the WhatsApp account ``account``, its secrets opened."""
    secrets = unseal(account.sealed_secrets)
    return WhatsAppAdapter(
        WhatsAppAccount(
            phone_number_id=str(account.settings.get("phone_number_id", "")),
            business_account_id=str(account.settings.get("business_account_id", "")),
            api_version=str(account.settings.get("graph_api_version") or DEFAULT_API_VERSION),
            template_name=str(account.settings.get("message_template") or ""),
            access_token=secrets.get("access_token", ""),
            app_secret=secrets.get("app_secret", ""),
            verify_token=secrets.get("verify_token", ""),
        )
    )
