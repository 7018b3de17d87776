"""A loopback stand-in for Twilio's Programmable Messaging API and the callbacks it makes.

It speaks the documented requests, answers and errors, so the product's adapter
(``apps.integrations.messaging.twilio_sms``) runs Twilio's own client against it:

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic (the account SID
  and its auth token), form fields ``To``, ``Body``, ``From`` or ``MessagingServiceSid``,
  ``StatusCallback``: 201 with the Message resource (``sid`` SM..., ``status`` "queued", or
  "accepted" through a Messaging Service). Errors in Twilio's JSON shape (``{"code",
  "message", "more_info", "status"}``): 20003 (401) for a wrong SID or token; 21604, 21602,
  21603 (400) for a missing To, Body or From; 21211 (400) for a To not in E.164, or any code
  ``refuse(number, code)`` gives a number (21614 not a mobile number, 21610 the recipient
  replied STOP).
* ``rate_limit(times)``: the next calls get 20429 (429); ``down = True``: 20500 (500);
  ``stop()``: nothing listens any more (connection refused).

``messages`` records what was sent by SID (never the token). The callbacks, as form posts
signed with ``X-Twilio-Signature`` as Twilio computes it (``signature``: the base64
HMAC-SHA1, under the account's auth token, of the URL followed by each field's name and
value in name order): ``advance(sid, status)`` posts a status callback (``MessageSid``,
``MessageStatus``, ``ErrorCode`` when failed or undelivered, ...) to the message's
``StatusCallback``; ``incoming`` posts a customer's text to a number's webhook, with
``OptOutType`` ("STOP") when Advanced Opt-Out reads it as one.

In the demo (``demo=True``, ``tools.fakes.demo``) it says on stdout what it is given (the
number's last four digits and the text) and plays the account's console and its customers:
``number_webhook`` (over HTTP ``POST /demo/callback-urls``, with the account's SID and auth
token) keeps a number's "a message comes in" webhook; with ``report_after``, each message
taken is reported sent, then delivered, that many seconds later to its StatusCallback;
``reply`` (``POST /demo/reply``, and ``python -m tools.fakes.twilio reply +52... STOP`` from a
terminal) posts a customer's text to the number's webhook, with ``OptOutType`` for Twilio's
default opt-out and opt-in keywords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import requests

from tools.fakes.loopback import PostServer, form_fields, reply_main, reply_posted, report_later

API_VERSION = "2010-04-01"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
MESSAGES_PATH = re.compile(rf"/{API_VERSION}/Accounts/(AC[0-9a-fA-F]{{32}})/Messages\.json")
ERRORS = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
}
# Advanced Opt-Out's default keywords (a text that is one of them, case aside), and the
# OptOutType Twilio adds to the incoming message's webhook for each
OPT_OUT_TYPES = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), "STOP"),
    **dict.fromkeys(("START", "UNSTOP"), "START"),
    **dict.fromkeys(("HELP", "INFO"), "HELP"),
}


def signature(auth_token: str, url: str, fields: dict[str, str]) -> str:
    """``X-Twilio-Signature`` for a form post of ``fields`` to ``url``."""
    signed = url + "".join(f"{name}{fields[name]}" for name in sorted(fields))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def error(code: int, message: str = "") -> tuple[int, dict[str, Any]]:
    """Twilio's error answer for ``code``: its HTTP status and JSON body (``message``: in
    place of the usual one, as Twilio words some with the request's values)."""
    status, usual = ERRORS[code]
    message = message or usual
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return status, {"code": code, "message": message, "more_info": more_info, "status": status}


@dataclass
class Message:
    sid: str
    account_sid: str
    to: str
    body: str
    from_: str
    messaging_service_sid: str
    status_callback: str
    status: str


@dataclass
class FakeTwilio(PostServer):
    accounts: dict[str, str] = field(default_factory=dict)  # account SID -> auth token
    messages: dict[str, Message] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)  # number -> error code
    calls: int = 0  # every call to the API, refused ones too
    down: bool = False
    rate_limited: int = 0  # how many of the next calls get a 429
    demo: bool = False  # a line on stdout per message, the /demo/ pages
    report_after: float | None = None  # seconds before a message is reported delivered
    webhooks: dict[str, tuple[str, str]] = field(default_factory=dict)  # number -> SID, URL

    def account(self, *, sid: str, auth_token: str) -> None:
        self.accounts[sid] = auth_token

    def number_webhook(self, number: str, url: str, *, account_sid: str) -> None:
        """The console's Phone Numbers page: the account's ``number`` posts each message
        that comes in to ``url``."""
        self.webhooks[number] = (account_sid, url)

    def say(self, line: str) -> None:
        if self.demo:
            print(f"twilio: {line}", flush=True)

    def refuse(self, number: str, code: int) -> None:
        """Messages to ``number`` are refused with Twilio's error ``code`` (21211, 21614,
        21610)."""
        self.refused[number] = code

    def rate_limit(self, times: int = 1) -> None:
        self.rate_limited = times

    # --- the callbacks ----------------------------------------------------------------

    def post_signed(self, url: str, fields: dict[str, str], account_sid: str) -> requests.Response:
        """Post ``fields`` to ``url`` as Twilio does, signed with the account's auth token."""
        headers = {"X-Twilio-Signature": signature(self.accounts[account_sid], url, fields)}
        return requests.post(url, data=fields, headers=headers, timeout=15)

    def status_fields(
        self, sid: str, status: str, *, error_code: int | None = None
    ) -> dict[str, str]:
        """A status callback for message ``sid`` now ``status`` (queued, sent, delivered,
        undelivered, failed, ...), as Twilio posts it."""
        message = self.messages[sid]
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": message.account_sid,
            "From": message.from_,
            "To": message.to,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid:
            fields["MessagingServiceSid"] = message.messaging_service_sid
        if status in ("failed", "undelivered"):
            fields["ErrorCode"] = str(error_code or 30003)
        return fields

    def advance(
        self, sid: str, status: str, *, error_code: int | None = None
    ) -> requests.Response | None:
        """Message ``sid`` is now ``status``: Twilio posts it to the message's
        StatusCallback (None when it has none)."""
        message = self.messages[sid]
        message.status = status
        if not message.status_callback:
            return None
        fields = self.status_fields(sid, status, error_code=error_code)
        return self.post_signed(message.status_callback, fields, message.account_sid)

    @staticmethod
    def incoming_fields(
        *, account_sid: str, sender: str, to: str, body: str, opt_out_type: str = ""
    ) -> dict[str, str]:
        """A customer's text to the account's number ``to``, as Twilio posts it to the
        number's webhook."""
        sid = f"SM{secrets.token_hex(16)}"
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": account_sid,
            "From": sender,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if opt_out_type:
            fields["OptOutType"] = opt_out_type
        return fields

    def incoming(
        self,
        url: str,
        *,
        account_sid: str,
        sender: str,
        to: str,
        body: str,
        opt_out_type: str = "",
    ) -> requests.Response:
        """Post a customer's text to ``url`` (the number's "a message comes in" webhook)."""
        fields = self.incoming_fields(
            account_sid=account_sid, sender=sender, to=to, body=body, opt_out_type=opt_out_type
        )
        return self.post_signed(url, fields, account_sid)

    # --- the demo -----------------------------------------------------------------------

    def _report_later(self, sid: str) -> None:
        """In ``report_after`` seconds, the handset has message ``sid``: Twilio posts it sent,
        then delivered, to its StatusCallback."""

        def report() -> str:
            answers = [self.advance(sid, "sent"), self.advance(sid, "delivered")]
            codes = ", ".join(str(a.status_code) for a in answers if a is not None)
            return f"delivered, status callbacks {codes or 'none (no StatusCallback)'}"

        report_later(self.report_after or 0.0, report, say=self.say, ref=sid)

    def reply(self, *, sender: str, text: str, to: str = "") -> dict[str, Any]:
        """A customer texts ``text`` from ``sender`` to the number ``to`` (or the one number
        with a webhook): Twilio posts it, signed, to the number's webhook, with
        ``OptOutType`` when the text is one of Advanced Opt-Out's keywords.
        ``{"sent", "message"}``."""
        if not to and len(self.webhooks) == 1:
            to = next(iter(self.webhooks))
        if to not in self.webhooks:
            return {"sent": False, "message": "No number with a webhook to text."}
        if not E164.fullmatch(sender):
            return {"sent": False, "message": "The number is in international format: +52..."}
        account_sid, url = self.webhooks[to]
        opt_out_type = OPT_OUT_TYPES.get(text.strip().upper(), "")
        return reply_posted(
            lambda: self.incoming(
                url,
                account_sid=account_sid,
                sender=sender,
                to=to,
                body=text,
                opt_out_type=opt_out_type,
            ),
            say=self.say,
            sender=sender,
            text=text,
            to=to,
        )

    def _demo(self, path: str, headers: Mapping[str, str], form: dict[str, str]) -> dict[str, Any]:
        if path == "/demo/callback-urls":
            account_sid = self._authenticated(headers.get("Authorization", ""))
            number, url = form.get("number", ""), form.get("inbound", "")
            if account_sid is None or not E164.fullmatch(number) or not url:
                return {
                    "saved": False,
                    "message": "Refused: the account's SID and token, a number, a URL.",
                }
            self.number_webhook(number, url, account_sid=account_sid)
            self.say(f"{number}: incoming-message webhook saved")
            return {"saved": True, "message": "Saved."}
        return self.reply(
            sender=form.get("from", ""), text=form.get("text", ""), to=form.get("to", "")
        )

    # --- the API ----------------------------------------------------------------------

    def _authenticated(self, auth: str) -> str | None:
        """The account SID of HTTP Basic ``auth`` when it names an account and its token."""
        try:
            user, token = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":", 1)
        except ValueError:
            return None
        known = self.accounts.get(user)
        return user if known is not None and secrets.compare_digest(known, token) else None

    def gate(self, account_sid: str, auth: str) -> tuple[int, dict[str, Any]] | None:
        """What every call to the API meets first (it is counted): an outage, the rate limit,
        the account's credentials; None when it gets past them."""
        self.calls += 1
        if self.down:
            return error(20500)
        if self.rate_limited:
            self.rate_limited -= 1
            return error(20429)
        if self._authenticated(auth) != account_sid:
            return error(20003)
        return None

    def create(
        self, account_sid: str, auth: str, form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """``POST .../Messages.json``: the answer's HTTP status and JSON body."""
        refused = self.gate(account_sid, auth)
        if refused is not None:
            return refused
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From", ""), form.get("MessagingServiceSid", "")
        if not to:
            return error(21604)
        if not body:
            return error(21602)
        if not sender and not service:
            return error(21603)
        code = self.refused.get(to, 0 if E164.fullmatch(to) else 21211)
        if code == 21211:  # Twilio quotes the number
            return error(code, f"The 'To' number {to} is not a valid phone number.")
        if code:
            return error(code)
        sid = f"SM{secrets.token_hex(16)}"
        status = "queued" if sender else "accepted"
        self.messages[sid] = Message(
            sid, account_sid, to, body, sender, service, form.get("StatusCallback", ""), status
        )
        self.say(f"SMS to ...{to[-4:]}: {body}")
        if self.report_after is not None:
            self._report_later(sid)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"
        return 201, {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }

    def answer_post(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        path = path.split("?")[0]
        if self.demo and path in ("/demo/callback-urls", "/demo/reply"):
            answer = self._demo(path, headers, form_fields(body))
            return 200, json.dumps(answer).encode(), "application/json"
        found = MESSAGES_PATH.fullmatch(path)
        if found is None:
            status, answer = error(20404)
        else:
            form = form_fields(body)
            status, answer = self.create(found.group(1), headers.get("Authorization", ""), form)
        return status, json.dumps(answer).encode(), "application/json"


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.fakes.twilio reply +52... STOP``: a customer texts the lender's
    number, against the Twilio fake of a running demo (``make run``)."""
    return reply_main(
        argv,
        prog="python -m tools.fakes.twilio",
        name="Twilio",
        port_variable="DEMO_TWILIO_PORT",
        default_port=8705,
        example="+52...",
    )


if __name__ == "__main__":
    sys.exit(main())
