"""A loopback stand-in for Meta's WhatsApp Cloud API: the send call and the webhooks it makes.

It speaks the Cloud API's documented requests, answers and errors, so the product's adapter
(``apps.integrations.messaging.whatsapp``) runs its real request path against it:

* ``POST /{version}/{phone-number-id}/messages`` with ``Authorization: Bearer <token>`` and a
  JSON body (``messaging_product: "whatsapp"``, ``to``, ``type`` ``text`` with ``text.body``
  or ``template`` with ``template.name``, ``template.language.code`` and the body
  component's text parameters), answered ``{"messaging_product": "whatsapp", "contacts":
  [{"input", "wa_id"}], "messages": [{"id": "wamid...."}]}``;
* errors as the Graph API gives them: ``{"error": {"message": "(#<code>) <title>", "type":
  "OAuthException", "code", "error_data": {"messaging_product", "details"}, "fbtrace_id"}}``
  with the code's HTTP status: 190 (401) for a token it does not know, 100 (400) for a bad
  parameter or a phone number ID the token does not own, 132001 (404) for a template name or
  language the account has no approved template in, 132000 (400) for the wrong number of
  parameters, 131026 (400) for a number told to fail, 130429 (429), 131056 or 80007 (400) for
  a rate limit, 2 (503) while it is down.

``account(...)`` registers a business phone number: its ID, its business account, its token,
the app secret that signs its webhooks, its verify token, its approved templates (name and
language -> number of body parameters) and its webhook URL. ``fail_number`` makes sends to a
number fail (at once, or later in its status), ``rate_limit`` answers the next sends with a
rate-limit error, ``down`` answers 503 and ``delay`` answers late. ``sent`` keeps each message
taken, ``requests`` each send's body and ``paths`` each send's path.

It plays the webhooks as Meta does, each POSTed to the account's webhook URL and signed
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body with the app secret>``:
``settle`` (sent then delivered, or failed: a text to a customer who has not written in the
last 24 hours fails with 131047, as the Cloud API reports it), ``report`` (one status),
``customer_writes`` (an inbound text, which opens the 24-hour window), ``customer_taps`` (a
template's quick-reply button or an interactive reply), and ``handshake`` (the verify-token
GET with ``hub.mode``, ``hub.verify_token`` and ``hub.challenge``). ``status_body``,
``inbound_body`` and ``signed`` give a test the same bodies and headers without a server.

In the demo (``demo=True``, ``tools.fakes.demo``) it says on stdout what it is given (the
number's last four digits and the text) and plays the Meta app's dashboard and the customers:
``webhook`` (over HTTP ``POST /demo/callback-urls``, with the number's access token) takes
the callback URL and verify token typed in the app's WhatsApp configuration, and keeps the
URL once the server has echoed the handshake's challenge (it asks until the server is up);
with ``report_after``, each message taken is settled that many seconds later (sent, then
delivered); ``reply`` (``POST /demo/reply``, and ``python -m tools.fakes.whatsapp reply
+2547... STOP`` from a terminal) is a customer writing to the business number.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests

from tools.fakes.loopback import (
    LoopbackServer,
    form_fields,
    reply_main,
    reply_posted,
    report_later,
)

WINDOW_SECONDS = 24 * 3600  # the customer service window a free-form text needs
# the Graph API's codes this fake answers: HTTP status and title (WhatsApp Cloud API: Error codes)
ERRORS: dict[int, tuple[int, str]] = {
    2: (503, "Service temporarily unavailable"),
    4: (400, "Application request limit reached"),
    100: (400, "Invalid parameter"),
    190: (401, "Access token has expired"),
    80007: (400, "Rate limit issues"),
    130429: (429, "Rate limit hit"),
    131000: (500, "Something went wrong"),
    131026: (400, "Message Undeliverable"),
    131047: (400, "Re-engagement message"),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit"),
    132000: (400, "Number of parameters does not match the expected number of params"),
    132001: (404, "Template name does not exist in the translation"),
}
PATH = re.compile(r"/(v[0-9]{1,2}\.[0-9])/([0-9]+)/messages")


class GraphFault(Exception):
    """An answer in the Graph API's error shape."""

    def __init__(self, code: int, details: str, *, status: int | None = None) -> None:
        super().__init__(details)
        known_status, title = ERRORS.get(code, (400, "Unknown error"))
        self.status = status or known_status
        self.body = {
            "error": {
                "message": f"(#{code}) {title}",
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": details},
                "fbtrace_id": "A" + secrets.token_urlsafe(16),
            }
        }


@dataclass
class Account:
    """A business phone number of a WhatsApp Business Account, in a Meta app."""

    phone_number_id: str
    business_account_id: str
    display_phone_number: str
    access_token: str
    app_secret: str
    verify_token: str
    templates: dict[tuple[str, str], int] = field(default_factory=dict)
    webhook_url: str = ""


@dataclass
class SentMessage:
    wamid: str
    phone_number_id: str
    to: str  # the customer's WhatsApp ID: digits
    kind: str  # text or template
    text: str = ""
    template: tuple[str, str, tuple[str, ...]] | None = None  # name, language, parameters
    fail_code: int | None = None  # how its status will fail (131047 outside the window)


@dataclass
class FakeWhatsApp:
    accounts: dict[str, Account] = field(default_factory=dict)
    sent: dict[str, SentMessage] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    failing: dict[str, tuple[int, bool]] = field(default_factory=dict)  # digits -> code, later
    limits: list[int] = field(default_factory=list)  # rate-limit codes for the next sends
    last_inbound: dict[tuple[str, str], float] = field(default_factory=dict)
    down: bool = False
    delay: float = 0.0
    demo: bool = False  # a line on stdout per message, the /demo/ pages
    report_after: float | None = None  # seconds before a message is settled
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    # --- set up -----------------------------------------------------------------------

    def account(
        self,
        *,
        phone_number_id: str,
        business_account_id: str,
        display_phone_number: str,
        access_token: str,
        app_secret: str,
        verify_token: str,
        templates: dict[tuple[str, str], int] | None = None,
        webhook_url: str = "",
    ) -> Account:
        account = Account(
            phone_number_id=phone_number_id,
            business_account_id=business_account_id,
            display_phone_number=display_phone_number,
            access_token=access_token,
            app_secret=app_secret,
            verify_token=verify_token,
            templates=dict(templates or {}),
            webhook_url=webhook_url,
        )
        self.accounts[phone_number_id] = account
        return account

    def fail_number(self, number: str, code: int = 131026, *, later: bool = False) -> None:
        """Sends to ``number`` fail with ``code``: refused at once, or (``later``) taken and
        then reported failed in its status, as Meta does for a number it finds undeliverable
        after taking the message."""
        self.failing[number.removeprefix("+")] = (code, later)

    def rate_limit(self, code: int = 130429, times: int = 1) -> None:
        """The next ``times`` sends are refused with the rate limit ``code`` (130429 the
        number's throughput, 131056 one customer, 80007 the business account, 4 the app)."""
        self.limits.extend([code] * times)

    def say(self, line: str) -> None:
        if self.demo:
            print(f"whatsapp: {line}", flush=True)

    # --- the webhooks -----------------------------------------------------------------

    @staticmethod
    def signed(body: dict[str, Any], app_secret: str) -> tuple[bytes, dict[str, str]]:
        """``body`` as Meta sends it, and its headers: the JSON and its signature."""
        raw = json.dumps(body, separators=(",", ":")).encode()
        digest = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
        return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}

    def _envelope(self, account: Account, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": account.business_account_id,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": account.display_phone_number,
                                    "phone_number_id": account.phone_number_id,
                                },
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    def status_body(
        self, wamid: str, status: str, *, code: int | None = None, at: int | None = None
    ) -> dict[str, Any]:
        """A status webhook for the message ``wamid``: sent, delivered, read, or failed with
        the Graph API's error ``code``."""
        message = self.sent[wamid]
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(at if at is not None else int(time.time())),
            "recipient_id": message.to,
        }
        if status in ("sent", "delivered", "read"):
            entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
        if status == "failed":
            code = code or 131000
            title = ERRORS.get(code, (400, "Unknown error"))[1]
            entry["errors"] = [
                {
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": {"details": title},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ]
        return self._envelope(self.accounts[message.phone_number_id], {"statuses": [entry]})

    def inbound_body(
        self,
        phone_number_id: str,
        sender: str,
        *,
        text: str = "",
        button: tuple[str, str] | None = None,
        interactive: tuple[str, str] | None = None,
        kind: str = "",
        at: int | None = None,
    ) -> dict[str, Any]:
        """A messages webhook: ``sender`` (digits) wrote ``text``, tapped a template's
        quick-reply ``button`` (its text and payload), or answered an ``interactive`` message
        (its reply's id and title); ``kind`` for another type (an image, a location)."""
        sender = sender.removeprefix("+")
        message: dict[str, Any] = {
            "from": sender,
            "id": "wamid." + base64.b64encode(secrets.token_bytes(24)).decode(),
            "timestamp": str(at if at is not None else int(time.time())),
        }
        if button is not None:
            message |= {"type": "button", "button": {"text": button[0], "payload": button[1]}}
        elif interactive is not None:
            reply = {"id": interactive[0], "title": interactive[1]}
            message |= {
                "type": "interactive",
                "interactive": {"type": "button_reply", "button_reply": reply},
            }
        elif kind:
            message |= {"type": kind, kind: {"id": secrets.token_hex(8)}}
        else:
            message |= {"type": "text", "text": {"body": text}}
        return self._envelope(
            self.accounts[phone_number_id],
            {
                "contacts": [{"profile": {"name": "Customer"}, "wa_id": sender}],
                "messages": [message],
            },
        )

    def post(self, phone_number_id: str, body: dict[str, Any]) -> requests.Response:
        """POST ``body`` to the account's webhook URL, signed with its app secret."""
        account = self.accounts[phone_number_id]
        raw, headers = self.signed(body, account.app_secret)
        return requests.post(account.webhook_url, data=raw, headers=headers, timeout=15)

    def report(self, wamid: str, status: str, *, code: int | None = None) -> requests.Response:
        """Meta reports one status of the message ``wamid``."""
        body = self.status_body(wamid, status, code=code)
        return self.post(self.sent[wamid].phone_number_id, body)

    def settle(self, wamid: str, *, read: bool = False) -> list[requests.Response]:
        """What happens to the message ``wamid``, as its status webhooks: sent, delivered (and
        ``read``), or sent then failed (a number that fails later; 131047 for a free-form
        text outside the customer's 24-hour window)."""
        message = self.sent[wamid]
        answers = [self.report(wamid, "sent")]
        if message.fail_code is not None:
            answers.append(self.report(wamid, "failed", code=message.fail_code))
            return answers
        answers.append(self.report(wamid, "delivered"))
        if read:
            answers.append(self.report(wamid, "read"))
        return answers

    def customer_writes(self, phone_number_id: str, sender: str, text: str) -> requests.Response:
        """The customer ``sender`` writes ``text`` to the business number (which opens the
        24-hour window for free-form texts to them)."""
        self.last_inbound[(phone_number_id, sender.removeprefix("+"))] = time.time()
        return self.post(phone_number_id, self.inbound_body(phone_number_id, sender, text=text))

    def customer_taps(
        self, phone_number_id: str, sender: str, text: str, payload: str = ""
    ) -> requests.Response:
        """The customer taps a template's quick-reply button reading ``text``."""
        self.last_inbound[(phone_number_id, sender.removeprefix("+"))] = time.time()
        body = self.inbound_body(phone_number_id, sender, button=(text, payload or text))
        return self.post(phone_number_id, body)

    def handshake(
        self, phone_number_id: str, *, verify_token: str | None = None, challenge: str = ""
    ) -> tuple[requests.Response, str]:
        """Meta verifies the webhook URL: a GET with the verify token (the account's unless
        given) and a challenge it expects back. Returns the answer and the challenge."""
        account = self.accounts[phone_number_id]
        challenge = challenge or str(secrets.randbelow(10**9))
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": account.verify_token if verify_token is None else verify_token,
            "hub.challenge": challenge,
        }
        return requests.get(account.webhook_url, params=params, timeout=15), challenge

    # --- the demo -----------------------------------------------------------------------

    def webhook(
        self, phone_number_id: str, url: str, *, verify_token: str, wait: float = 120.0
    ) -> threading.Thread:
        """The app's WhatsApp configuration, "Verify and save": Meta sends the handshake to
        ``url`` with ``verify_token`` and keeps ``url`` as the number's webhook once its
        challenge comes back. Asked again each second while nothing answers, for up to
        ``wait`` seconds (the demo seeds before its server starts). Returns the thread."""
        account = self.accounts[phone_number_id]

        def verify() -> None:
            challenge = str(secrets.randbelow(10**9))
            params = {
                "hub.mode": "subscribe",
                "hub.verify_token": verify_token,
                "hub.challenge": challenge,
            }
            deadline = time.monotonic() + wait
            while True:
                try:
                    answer = requests.get(url, params=params, timeout=15)
                    break
                except requests.RequestException:
                    if time.monotonic() >= deadline:
                        self.say(f"{phone_number_id}: the webhook never answered")
                        return
                    time.sleep(1.0)
            if answer.status_code == 200 and answer.text == challenge:
                account.webhook_url = url
                self.say(f"{phone_number_id}: webhook verified and saved")
            else:
                self.say(f"{phone_number_id}: the webhook refused the verify token")

        thread = threading.Thread(target=verify, daemon=True)
        thread.start()
        return thread

    def _settle_later(self, wamid: str) -> None:
        """In ``report_after`` seconds, the message ``wamid`` is settled: its statuses go to
        the number's webhook (none saved: no webhook, as Meta)."""

        def settle() -> str:
            if not self.accounts[self.sent[wamid].phone_number_id].webhook_url:
                return "settled; no webhook is saved"
            codes = ", ".join(str(a.status_code) for a in self.settle(wamid))
            outcome = "failed" if self.sent[wamid].fail_code is not None else "delivered"
            return f"{outcome}, status webhooks {codes}"

        report_later(self.report_after or 0.0, settle, say=self.say, ref=wamid[-12:])

    def reply(self, *, sender: str, text: str, phone_number_id: str = "") -> dict[str, Any]:
        """The customer ``sender`` writes ``text`` to the business number
        ``phone_number_id`` (or the one number with a webhook). ``{"sent", "message"}``."""
        numbers = [a for a in self.accounts.values() if a.webhook_url]
        account = (
            self.accounts.get(phone_number_id)
            if phone_number_id
            else (numbers[0] if len(numbers) == 1 else None)
        )
        if account is None or not account.webhook_url:
            return {"sent": False, "message": "No business number with a webhook to write to."}
        digits = sender.removeprefix("+")
        if not sender.startswith("+") or not digits.isdigit() or not 8 <= len(digits) <= 15:
            return {"sent": False, "message": "The number is in international format: +254..."}
        return reply_posted(
            lambda: self.customer_writes(account.phone_number_id, sender, text),
            say=self.say,
            sender=sender,
            text=text,
            to=f"+{account.display_phone_number}",
        )

    def _demo(self, path: str, authorization: str, form: dict[str, str]) -> dict[str, Any]:
        if path == "/demo/callback-urls":
            account = self.accounts.get(form.get("phone_number_id", ""))
            token = authorization.removeprefix("Bearer ")
            url, verify_token = form.get("callback_url", ""), form.get("verify_token", "")
            if (
                account is None
                or not secrets.compare_digest(account.access_token, token)
                or not url
                or not verify_token
            ):
                return {"saved": False, "message": "Refused: the number's token, a URL, a token."}
            self.webhook(account.phone_number_id, url, verify_token=verify_token)
            return {"saved": True, "message": "Verifying the webhook."}
        return self.reply(
            sender=form.get("from", ""),
            text=form.get("text", ""),
            phone_number_id=form.get("phone_number_id", ""),
        )

    # --- the API ----------------------------------------------------------------------

    def _send(self, path: str, authorization: str, raw: bytes) -> dict[str, Any]:
        self.paths.append(path)
        match = PATH.fullmatch(path)
        if match is None:
            raise GraphFault(100, "Unknown path components")
        token = authorization.removeprefix("Bearer ")
        owned = [a for a in self.accounts.values() if a.access_token == token]
        if not token or not owned:
            raise GraphFault(190, "Invalid OAuth access token - Cannot parse access token")
        account = self.accounts.get(match.group(2))
        if account is None or account not in owned:
            raise GraphFault(
                100,
                f"Unsupported post request. Object with ID '{match.group(2)}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation",
            )
        if self.limits:
            raise GraphFault(self.limits.pop(0), "Too many messages sent from this phone number")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise GraphFault(100, "The request body is not JSON") from None
        self.requests.append(body)
        if body.get("messaging_product") != "whatsapp":
            raise GraphFault(100, "The parameter messaging_product is required.")
        given = str(body.get("to", ""))
        to = given.removeprefix("+")
        if not to.isdigit() or not 8 <= len(to) <= 15:
            raise GraphFault(100, "The parameter to is not a valid WhatsApp phone number.")
        code, later = self.failing.get(to, (None, False))
        if code is not None and not later:
            raise GraphFault(code, "Message failed to send.")
        message = self._message(account, to, body)
        if later:
            message.fail_code = code
        self.sent[message.wamid] = message
        if message.template is not None:
            name, language, parameters = message.template
            self.say(f"template {name} ({language}) to ...{to[-4:]}: {' | '.join(parameters)}")
        else:
            self.say(f"text to ...{to[-4:]}: {message.text}")
        if self.report_after is not None:
            self._settle_later(message.wamid)
        answer: dict[str, Any] = {"id": message.wamid}
        if message.kind == "template":
            answer["message_status"] = "accepted"
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": given, "wa_id": to}],
            "messages": [answer],
        }

    def _message(self, account: Account, to: str, body: dict[str, Any]) -> SentMessage:
        wamid = (
            "wamid."
            + base64.b64encode(
                f"{account.phone_number_id}:{to}:{next(self._ids)}:{secrets.token_hex(6)}".encode()
            ).decode()
        )
        kind = body.get("type")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text.strip() or len(text) > 4096:
                raise GraphFault(100, "The parameter text['body'] must be 1 to 4096 characters.")
            opened = self.last_inbound.get((account.phone_number_id, to), 0.0)
            late = 131047 if time.time() - opened > WINDOW_SECONDS else None
            return SentMessage(wamid, account.phone_number_id, to, "text", text, fail_code=late)
        if kind == "template":
            template = body.get("template") or {}
            name = str(template.get("name", ""))
            language = str((template.get("language") or {}).get("code", ""))
            if (name, language) not in account.templates:
                raise GraphFault(
                    132001, f"template name ({name}) does not exist in {language or 'any language'}"
                )
            parameters = tuple(
                str(p.get("text", ""))
                for c in template.get("components") or ()
                if c.get("type") == "body"
                for p in c.get("parameters") or ()
            )
            expected = account.templates[(name, language)]
            if len(parameters) != expected:
                raise GraphFault(
                    132000,
                    f"body: number of localizable_params ({len(parameters)}) does not match "
                    f"the expected number of params ({expected})",
                )
            call = (name, language, parameters)
            return SentMessage(wamid, account.phone_number_id, to, "template", template=call)
        raise GraphFault(100, f"The parameter type ({kind}) is not one this fake knows.")

    def start(self, port: int = 0) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fake.demo and self.path in ("/demo/callback-urls", "/demo/reply"):
                    authorization = self.headers.get("Authorization", "")
                    return self._answer(200, fake._demo(self.path, authorization, form_fields(raw)))
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.down:
                    fault = GraphFault(2, "Service temporarily unavailable")
                    return self._answer(fault.status, fault.body)
                try:
                    answer = fake._send(self.path, self.headers.get("Authorization", ""), raw)
                except GraphFault as fault:
                    return self._answer(fault.status, fault.body)
                return self._answer(200, answer)

        self.server = LoopbackServer(("127.0.0.1", port), Handler)
        # one answer per connection: closing waits for the answers still being written
        # (a late one, ``delay``), so none outlives its test
        self.server.daemon_threads = False
        # a short poll: stop() (each test's teardown) returns within it
        serve = functools.partial(self.server.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.fakes.whatsapp reply +2547... STOP``: a customer writes to the
    lender's WhatsApp number, against the WhatsApp fake of a running demo (``make run``)."""
    return reply_main(
        argv,
        prog="python -m tools.fakes.whatsapp",
        name="WhatsApp",
        port_variable="DEMO_WHATSAPP_PORT",
        default_port=8704,
        example="+2547...",
    )


if __name__ == "__main__":
    sys.exit(main())
