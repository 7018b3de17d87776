"""A loopback stand-in for Africa's Talking's SMS API and the callbacks it makes.

It speaks the documented requests, answers and errors, so the product's adapter
(``apps.integrations.messaging.africastalking``) runs Africa's Talking's own client against
it:

* ``POST /version1/messaging`` (form fields ``username``, ``to`` (numbers separated by
  commas), ``message``, ``from``, ``bulkSMSMode``, ``enqueue``; the ``apiKey`` header):
  201 with ``{"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: KES 0.8000",
  "Recipients": [{"statusCode": 101, "number", "status": "Success", "cost", "messageId"}]}}``.
  A recipient is refused by its own statusCode: 403 ``InvalidPhoneNumber`` for a number not
  in international format, or any code ``refuse(number, code)`` gives it (406
  ``UserInBlacklist``, 405 ``InsufficientBalance``, ...). A sender id the app has not
  registered refuses the message as a whole (no recipient, ``Message: "InvalidSenderId"``).
  A wrong username or API key: 401, ``The supplied authentication is invalid`` (plain text).
* ``rate_limit(times)``: the next calls get 429; ``down = True``: 503 (an outage);
  ``stop()``: nothing listens any more (connection refused).

``messages`` records what was sent (never the API key). The callbacks Africa's Talking
makes to the addresses set in an app's dashboard, as form posts: ``report`` (a delivery
report: ``id``, ``status``, ``phoneNumber``, ``networkCode``, ``failureReason`` when Failed
or Rejected, ``retryCount``), ``incoming`` (``from``, ``to``, ``text``, ``date``, ``id``,
``linkId``) and ``opt_out`` (a bulk SMS opt-out: ``senderId``, ``phoneNumber``).

In the demo (``demo=True``, ``tools.fakes.demo``) it says on stdout what it is given (the
number's last four digits and the text) and plays the app's dashboard and its customers:
``callback_urls`` (over HTTP ``POST /demo/callback-urls``, with the app's ``apiKey``) keeps
the addresses the lender pastes into SMS > SMS Callback URLs; with ``report_after``, each
message taken is reported delivered (``Success``) that many seconds later to the app's
delivery-report address; ``reply`` (``POST /demo/reply``, and ``python -m
tools.fakes.africastalking reply +2547... STOP`` from a terminal) posts a customer's text to
the shortcode as an incoming message.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from tools.fakes.loopback import PostServer, form_fields, reply_main, reply_posted, report_later

# a recipient's statusCode and the status Africa's Talking names it by
STATUS_NAMES = {
    100: "Processed",
    101: "Success",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
COST = "KES 0.8000"
NETWORK = "63902"  # Safaricom
INTERNATIONAL = re.compile(r"\+[1-9][0-9]{7,14}")
AUTH_REFUSED = "The supplied authentication is invalid"


@dataclass
class App:
    username: str
    api_key: str
    sender_ids: tuple[str, ...] = ()
    # the dashboard's SMS Callback URLs: Route ("delivery", "inbound", "optout") -> address
    callback_urls: dict[str, str] = field(default_factory=dict)


@dataclass
class SmsSent:
    """One recipient of one ``POST /version1/messaging``, as the fake answered it."""

    username: str
    to: str
    text: str
    sender_id: str
    message_id: str
    status_code: int


@dataclass
class FakeAfricasTalking(PostServer):
    apps: dict[str, App] = field(default_factory=dict)
    messages: list[SmsSent] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # number -> statusCode
    calls: int = 0  # every call to the API, refused ones too
    down: bool = False
    rate_limited: int = 0  # how many of the next calls get a 429
    demo: bool = False  # a line on stdout per message, the /demo/ pages
    report_after: float | None = None  # seconds before a message is reported delivered

    def app(self, *, username: str, api_key: str, sender_ids: tuple[str, ...] = ()) -> None:
        self.apps[username] = App(username, api_key, sender_ids)

    def refuse(self, number: str, status_code: int) -> None:
        """Messages to ``number`` are refused with ``status_code`` (403, 406, ...)."""
        self.refused[number] = status_code

    def rate_limit(self, times: int = 1) -> None:
        self.rate_limited = times

    def callback_urls(self, username: str, **urls: str) -> None:
        """The app's dashboard, SMS > SMS Callback URLs: where its delivery reports
        (``delivery``), incoming messages (``inbound``) and opt-outs (``optout``) go."""
        self.apps[username].callback_urls.update({k: v for k, v in urls.items() if v})

    def say(self, line: str) -> None:
        if self.demo:
            print(f"africastalking: {line}", flush=True)

    def sent(self, message_id: str) -> SmsSent:
        return next(m for m in self.messages if m.message_id == message_id)

    # --- the callbacks ----------------------------------------------------------------

    def report_fields(
        self, message_id: str, status: str = "Success", *, failure_reason: str = ""
    ) -> dict[str, str]:
        """A delivery report for ``message_id`` (Sent, Submitted, Buffered, Success, Failed,
        Rejected), as Africa's Talking posts it."""
        fields = {
            "id": message_id,
            "status": status,
            "phoneNumber": self.sent(message_id).to,
            "networkCode": NETWORK,
            "retryCount": "0",
        }
        if status in ("Failed", "Rejected"):
            fields["failureReason"] = failure_reason or "DeliveryFailure"
        return fields

    def report(
        self, url: str, message_id: str, status: str = "Success", *, failure_reason: str = ""
    ) -> requests.Response:
        """Post a delivery report for ``message_id`` to ``url``."""
        fields = self.report_fields(message_id, status, failure_reason=failure_reason)
        return requests.post(url, data=fields, timeout=15)

    @staticmethod
    def incoming_fields(*, sender: str, to: str, text: str, link_id: str = "") -> dict[str, str]:
        """A text a customer sent to the app's shortcode or number, as Africa's Talking
        posts it."""
        return {
            "from": sender,
            "to": to,
            "text": text,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "id": secrets.token_hex(16),
            "linkId": link_id,
            "networkCode": NETWORK,
        }

    def incoming(
        self, url: str, *, sender: str, to: str, text: str, link_id: str = ""
    ) -> requests.Response:
        """Post a customer's text to ``url``."""
        fields = self.incoming_fields(sender=sender, to=to, text=text, link_id=link_id)
        return requests.post(url, data=fields, timeout=15)

    @staticmethod
    def opt_out(url: str, *, sender_id: str, phone: str) -> requests.Response:
        """Post a bulk SMS opt-out (``phone`` asked ``sender_id`` to stop) to ``url``."""
        return requests.post(url, data={"senderId": sender_id, "phoneNumber": phone}, timeout=15)

    # --- the demo -----------------------------------------------------------------------

    def _report_later(self, app: App, message_id: str) -> None:
        """In ``report_after`` seconds, the handset has the message: its delivery report goes
        to the app's delivery-report address (none set: no report, as Africa's Talking)."""

        def report() -> str:
            url = app.callback_urls.get("delivery")
            if not url:
                return "delivered; no delivery-report URL is set"
            return f"delivered, report {self.report(url, message_id, 'Success').status_code}"

        report_later(self.report_after or 0.0, report, say=self.say, ref=message_id)

    def reply(self, *, sender: str, text: str, username: str = "") -> dict[str, Any]:
        """A customer texts ``text`` from ``sender`` to the app's shortcode (``username``'s
        app, or the one app with an incoming-messages URL): Africa's Talking posts it to
        that URL. ``{"sent", "message"}``."""
        apps = [a for a in self.apps.values() if a.callback_urls.get("inbound")]
        app = self.apps.get(username) if username else (apps[0] if len(apps) == 1 else None)
        url = app.callback_urls.get("inbound") if app is not None else ""
        if app is None or not url:
            return {"sent": False, "message": "No app with an incoming-messages URL to text."}
        if not INTERNATIONAL.fullmatch(sender):
            return {"sent": False, "message": "The number is in international format: +254..."}
        to = app.sender_ids[0] if app.sender_ids else ""
        return reply_posted(
            lambda: self.incoming(url, sender=sender, to=to, text=text),
            say=self.say,
            sender=sender,
            text=text,
            to=to or app.username,
        )

    def _demo(self, path: str, headers: Mapping[str, str], form: dict[str, str]) -> dict[str, Any]:
        if path == "/demo/callback-urls":
            app = self.apps.get(form.get("username", ""))
            if app is None or not secrets.compare_digest(app.api_key, headers.get("apiKey", "")):
                return {"saved": False, "message": AUTH_REFUSED}
            urls = {route: form.get(route, "") for route in ("delivery", "inbound", "optout")}
            self.callback_urls(app.username, **urls)
            self.say(f"{app.username}: SMS callback URLs saved")
            return {"saved": True, "message": "Saved."}
        return self.reply(
            sender=form.get("from", ""),
            text=form.get("text", ""),
            username=form.get("username", ""),
        )

    # --- the API ----------------------------------------------------------------------

    def _recipient(self, app_name: str, number: str, text: str, sender_id: str) -> dict[str, Any]:
        code = self.refused.get(number, 101 if INTERNATIONAL.fullmatch(number) else 403)
        accepted = code < 200
        message_id = f"ATXid_{secrets.token_hex(16)}" if accepted else "None"
        if accepted:
            self.messages.append(SmsSent(app_name, number, text, sender_id, message_id, code))
            self.say(f"SMS to ...{number[-4:]}: {text}")
            if self.report_after is not None:
                self._report_later(self.apps[app_name], message_id)
        return {
            "statusCode": code,
            "number": number,
            "status": STATUS_NAMES.get(code, "Failed"),
            "cost": COST if accepted else "0",
            "messageId": message_id,
        }

    def send(self, form: dict[str, str], api_key: str) -> tuple[int, Any]:
        """``POST /version1/messaging``: the answer's HTTP status and body (a dict: JSON)."""
        self.calls += 1
        if self.down:
            return 503, "Service Unavailable"
        if self.rate_limited:
            self.rate_limited -= 1
            return 429, "Too Many Requests"
        app = self.apps.get(form.get("username", ""))
        if app is None or not secrets.compare_digest(app.api_key, api_key):
            return 401, AUTH_REFUSED
        numbers = [n.strip() for n in form.get("to", "").split(",") if n.strip()]
        text, sender_id = form.get("message", ""), form.get("from", "")
        if not numbers or not text:
            return 400, "Request is missing required form field 'to' or 'message'"
        if sender_id and sender_id not in app.sender_ids:
            return 201, {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}
        recipients = [self._recipient(app.username, n, text, sender_id) for n in numbers]
        taken = sum(1 for r in recipients if r["statusCode"] < 200)
        cost = f"KES {0.8 * taken:.4f}" if taken else "0"
        summary = f"Sent to {taken}/{len(numbers)} Total Cost: {cost}"
        return 201, {"SMSMessageData": {"Message": summary, "Recipients": recipients}}

    def answer_post(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        path = path.split("?")[0]
        if self.demo and path in ("/demo/callback-urls", "/demo/reply"):
            answer = self._demo(path, headers, form_fields(body))
            return 200, json.dumps(answer).encode(), "application/json"
        if path != "/version1/messaging":
            return 404, b"Not Found", "text/plain"
        form = form_fields(body)
        status, answer = self.send(form, headers.get("apiKey", ""))
        if isinstance(answer, dict):
            return status, json.dumps(answer).encode(), "application/json"
        return status, str(answer).encode(), "text/plain"


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.fakes.africastalking reply +2547... STOP``: a customer texts the
    lender's shortcode, against the Africa's Talking fake of a running demo (``make run``)."""
    return reply_main(
        argv,
        prog="python -m tools.fakes.africastalking",
        name="Africa's Talking",
        port_variable="DEMO_AFRICASTALKING_PORT",
        default_port=8703,
        example="+2547...",
    )


if __name__ == "__main__":
    sys.exit(main())
