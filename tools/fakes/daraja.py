"""A loopback stand-in for Safaricom's Daraja API: the OAuth token, the STK push and its query.

It speaks Daraja's documented requests, answers and errors, so the product's client
(``apps.integrations.payments.mpesa``) runs its real request path against it:

* ``GET /oauth/v1/generate?grant_type=client_credentials`` with HTTP Basic (consumer key and
  secret): ``{"access_token", "expires_in": "3599"}``, or 400 for a wrong pair;
* ``POST /mpesa/stkpush/v1/processrequest`` with ``Authorization: Bearer <token>``: checks
  the password (base64 of shortcode, passkey and timestamp), the amount (a whole number of
  shillings, at least 1) and the phone (2547XXXXXXXX); answers ``ResponseCode "0"`` with a
  ``CheckoutRequestID``, or Daraja's error shape (``{"requestId", "errorCode",
  "errorMessage"}``: 404.001.03 for a bad token, 400.002.02 for a bad field);
* ``POST /mpesa/stkpushquery/v1/query``: 500.001.1001 "being processed" until the push is
  settled (``settle``), then its ``ResultCode``.

* ``POST /mpesa/c2b/v1/registerurl``: the paybill's C2B validation and confirmation URLs
  (refused, as Daraja does, when one has "mpesa" or "safaricom" in it).

``app(key, secret, passkey, shortcode)`` registers a Daraja app; ``pushes`` records what was
asked (no secret); ``settle(checkout_id, result_code)`` plays the customer's answer and, as
Daraja does, POSTs the STK callback to the push's CallBackURL (``callback=False`` to keep it:
a callback that never comes); ``stk_callback_body`` builds that body; ``pay_bill`` plays a
customer paying the paybill from the M-Pesa menu (validation, then confirmation).

In the demo (``demo=True``, ``tools.fakes.demo``) it also plays the customer: with
``answer_after`` it enters the PIN that many seconds after each prompt; ``GET /`` is an
"M-Pesa menu" page paying the paybill (``POST /demo/pay-bill``), which ``python -m
tools.fakes.daraja pay-bill`` calls from a terminal; and it says what it does on stdout.
"""

from __future__ import annotations

import argparse
import base64
import html
import itertools
import json
import os
import secrets
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import requests

DESCRIPTIONS = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
}


def nairobi_now() -> str:
    return datetime.now(ZoneInfo("Africa/Nairobi")).strftime("%Y%m%d%H%M%S")


def receipt_number() -> str:
    """An M-Pesa receipt number: ten capitals and digits, as in the customer's SMS."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))


@dataclass
class App:
    key: str
    secret: str
    passkey: str
    shortcode: str


@dataclass
class Push:
    checkout_id: str
    merchant_id: str
    shortcode: str
    amount: int
    phone: str
    account_reference: str
    callback_url: str
    result_code: int | None = None  # None while the customer has not answered
    receipt: str = ""


@dataclass
class FakeDaraja:
    apps: dict[str, App] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> consumer key
    pushes: dict[str, Push] = field(default_factory=dict)
    token_requests: int = 0
    c2b_urls: dict[str, tuple[str, str]] = field(default_factory=dict)  # shortcode -> urls
    demo: bool = False  # the demo's pages, and a line on stdout for what it does
    answer_after: float | None = None  # the demo customer enters the PIN after this many seconds
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def app(self, *, key: str, secret: str, passkey: str, shortcode: str) -> None:
        self.apps[key] = App(key, secret, passkey, shortcode)

    def settle(
        self, checkout_id: str, result_code: int, *, callback: bool = True
    ) -> requests.Response | None:
        """The customer answers the prompt (0: paid with their PIN; 1032: cancelled; 1037:
        no answer); Daraja then calls the push's CallBackURL back, unless ``callback`` is
        False."""
        push = self.pushes[checkout_id]
        push.result_code = result_code
        if result_code == 0 and not push.receipt:
            push.receipt = receipt_number()
        if not callback:
            return None
        return requests.post(push.callback_url, json=self.stk_callback_body(push), timeout=15)

    def stk_callback_body(self, push: Push, *, amount: Any = None) -> dict[str, Any]:
        """Daraja's STK callback for ``push`` as it stands (``amount`` to play a tampered one)."""
        callback: dict[str, Any] = {
            "MerchantRequestID": push.merchant_id,
            "CheckoutRequestID": push.checkout_id,
            "ResultCode": push.result_code,
            "ResultDesc": DESCRIPTIONS.get(push.result_code or 0, "Failed"),
        }
        if push.result_code == 0:
            callback["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": float(push.amount if amount is None else amount)},
                    {"Name": "MpesaReceiptNumber", "Value": push.receipt},
                    {"Name": "TransactionDate", "Value": int(nairobi_now())},
                    {"Name": "PhoneNumber", "Value": int(push.phone)},
                ]
            }
        return {"Body": {"stkCallback": callback}}

    def c2b_body(
        self, *, shortcode: str, account: str, amount: Any, receipt: str = ""
    ) -> dict[str, Any]:
        """A C2B validation or confirmation body, as Daraja sends them (the payer's number
        masked, as Daraja masks it)."""
        return {
            "TransactionType": "Pay Bill",
            "TransID": receipt or receipt_number(),
            "TransTime": nairobi_now(),
            "TransAmount": str(amount),
            "BusinessShortCode": shortcode,
            "BillRefNumber": account,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": "2547 ***** 126",
            "FirstName": "JOHN",
        }

    def pay_bill(
        self, *, shortcode: str, account: str, amount: Any, receipt: str = ""
    ) -> tuple[dict[str, Any], int]:
        """A customer pays ``amount`` to the paybill with ``account`` as the account number:
        Daraja asks the validation URL first, and on acceptance takes the money and sends the
        confirmation. Returns the validation's answer and the confirmation's HTTP status (0
        when refused at validation)."""
        confirmation_url, validation_url = self.c2b_urls[shortcode]
        body = self.c2b_body(shortcode=shortcode, account=account, amount=amount, receipt=receipt)
        answer = requests.post(validation_url, json=body, timeout=15).json()
        if str(answer.get("ResultCode")) != "0":
            return answer, 0
        return answer, requests.post(confirmation_url, json=body, timeout=15).status_code

    # --- the demo ---------------------------------------------------------------------

    def say(self, line: str) -> None:
        if self.demo:
            print(f"daraja: {line}", flush=True)

    def _answer_later(self, push: Push) -> None:
        """The demo customer reads the prompt and enters the PIN ``answer_after`` seconds later:
        Daraja then calls the push's CallBackURL back."""

        def answer() -> None:
            if push.result_code is not None:  # answered meanwhile
                return
            try:
                reply = self.settle(push.checkout_id, 0)
            except requests.RequestException as error:
                self.say(
                    f"{push.checkout_id}: the callback found no server ({type(error).__name__})"
                )
                return
            status = reply.status_code if reply is not None else 0
            self.say(f"{push.checkout_id}: PIN entered, receipt {push.receipt}; callback {status}")

        timer = threading.Timer(self.answer_after or 0.0, answer)
        timer.daemon = True
        timer.start()

    def demo_pay_bill(self, *, shortcode: str, account: str, amount: str) -> dict[str, Any]:
        """The M-Pesa menu's Pay Bill, as the demo plays it: ``{"paid", "message",
        "receipt"}``, the message worded as M-Pesa's SMS."""
        if not amount.isdigit() or int(amount) < 1:
            return {"paid": False, "message": "The amount is a whole number of shillings."}
        if shortcode not in self.c2b_urls:
            return {
                "paid": False,
                "message": f"Business number {shortcode} is not registered for Pay Bill.",
            }
        receipt = receipt_number()
        try:
            answer, confirmed = self.pay_bill(
                shortcode=shortcode, account=account, amount=amount, receipt=receipt
            )
        except requests.RequestException as error:
            return {
                "paid": False,
                "message": f"The business did not answer ({type(error).__name__}).",
            }
        if not confirmed:
            code = answer.get("ResultCode")
            return {
                "paid": False,
                "message": f"Failed. {shortcode} refused account {account} ({code}). No money moved.",
            }
        self.say(f"paybill {shortcode} account {account}: {receipt}, confirmation {confirmed}")
        return {
            "paid": True,
            "receipt": receipt,
            "message": f"{receipt} Confirmed. Ksh{int(amount):,}.00 sent to {shortcode} for "
            f"account {account}.",
        }

    def menu_page(self, outcome: dict[str, Any] | None = None, account: str = "") -> str:
        shortcode = next(iter(self.c2b_urls), "")
        said = ""
        if outcome is not None:
            said = f'<p role="status"><strong>{html.escape(outcome["message"])}</strong></p>'
        return (
            "<!doctype html><html><head><title>M-Pesa (demo)</title></head><body>"
            "<h1>M-Pesa</h1><p>Lipa na M-Pesa &rsaquo; Pay Bill (the demo's phone menu: it "
            "works while the phone is locked, through the dialer)</p>"
            f"{said}"
            '<form method="post" action="/demo/pay-bill">'
            '<p><label>Business no. <input name="shortcode" inputmode="numeric" '
            f'value="{html.escape(shortcode)}" required></label></p>'
            '<p><label>Account no. <input name="account" placeholder="SC-…" '
            f'value="{html.escape(account)}" required></label></p>'
            '<p><label>Amount (Ksh) <input name="amount" inputmode="numeric" required></label></p>'
            '<p><button type="submit">Send</button></p></form></body></html>'
        )

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

            def _error(self, status: int, code: str, message: str) -> None:
                self._answer(
                    status,
                    {"requestId": secrets.token_hex(6), "errorCode": code, "errorMessage": message},
                )

            def _page(self, status: int, page: str) -> None:
                data = page.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _demo_pay_bill(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0].strip() for k, v in parse_qs(raw).items()}
                outcome = fake.demo_pay_bill(
                    shortcode=form.get("shortcode", ""),
                    account=form.get("account", ""),
                    amount=form.get("amount", ""),
                )
                if "application/json" in self.headers.get("Accept", ""):
                    return self._answer(200 if outcome["paid"] else 409, outcome)
                return self._page(200, fake.menu_page(outcome, form.get("account", "")))

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if fake.demo and url.path == "/":
                    return self._page(200, fake.menu_page())
                if url.path != "/oauth/v1/generate":
                    return self._error(404, "404.001.01", "Resource not found")
                if parse_qs(url.query).get("grant_type") != ["client_credentials"]:
                    return self._error(400, "400.008.02", "Invalid grant type passed")
                fake.token_requests += 1
                auth = self.headers.get("Authorization", "")
                try:
                    key, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":")
                except ValueError:
                    return self._error(400, "400.008.01", "Invalid Authentication passed")
                app = fake.apps.get(key)
                if app is None or app.secret != secret:
                    return self._error(400, "400.008.01", "Invalid Authentication passed")
                token = secrets.token_urlsafe(20)
                fake.tokens[token] = key
                return self._answer(200, {"access_token": token, "expires_in": "3599"})

            def do_POST(self) -> None:
                if fake.demo and self.path == "/demo/pay-bill":
                    return self._demo_pay_bill()
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                app = fake.apps.get(fake.tokens.get(token, ""))
                if app is None:
                    return self._error(404, "404.001.03", "Invalid Access Token")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                expected = base64.b64encode(
                    f"{app.shortcode}{app.passkey}{body.get('Timestamp', '')}".encode()
                ).decode()
                if self.path == "/mpesa/c2b/v1/registerurl":
                    if str(body.get("ShortCode")) != app.shortcode:
                        return self._error(400, "400.003.02", "Bad Request - Invalid ShortCode")
                elif body.get("BusinessShortCode") != app.shortcode or body.get("Password") != (
                    expected
                ):
                    return self._error(400, "400.002.02", "Bad Request - Invalid Password")
                if self.path == "/mpesa/stkpush/v1/processrequest":
                    return self._push(app, body)
                if self.path == "/mpesa/stkpushquery/v1/query":
                    return self._query(body)
                if self.path == "/mpesa/c2b/v1/registerurl":
                    return self._register(body)
                return self._error(404, "404.001.01", "Resource not found")

            def _push(self, app: App, body: dict[str, Any]) -> None:
                amount, phone = body.get("Amount"), str(body.get("PhoneNumber", ""))
                if not isinstance(amount, int) or amount < 1:
                    return self._error(400, "400.002.02", "Bad Request - Invalid Amount")
                if len(phone) != 12 or not phone.startswith("2547") or not phone.isdigit():
                    return self._error(400, "400.002.02", "Bad Request - Invalid PhoneNumber")
                n = next(fake._ids)
                push = Push(
                    checkout_id=f"ws_CO_{n:012d}",
                    merchant_id=f"29115-{n}",
                    shortcode=app.shortcode,
                    amount=amount,
                    phone=phone,
                    account_reference=str(body.get("AccountReference", "")),
                    callback_url=str(body.get("CallBackURL", "")),
                )
                fake.pushes[push.checkout_id] = push
                if fake.answer_after is not None:
                    fake.say(
                        f"{push.checkout_id}: prompt for Ksh{amount} on the phone ending "
                        f"{phone[-3:]}; the customer enters the PIN in {fake.answer_after:g} s"
                    )
                    fake._answer_later(push)
                return self._answer(
                    200,
                    {
                        "MerchantRequestID": push.merchant_id,
                        "CheckoutRequestID": push.checkout_id,
                        "ResponseCode": "0",
                        "ResponseDescription": "Success. Request accepted for processing",
                        "CustomerMessage": "Success. Request accepted for processing",
                    },
                )

            def _register(self, body: dict[str, Any]) -> None:
                urls = (str(body.get("ConfirmationURL", "")), str(body.get("ValidationURL", "")))
                if any(word in u.lower() for u in urls for word in ("mpesa", "safaricom")):
                    return self._error(400, "400.003.01", "Invalid URL: keyword not allowed")
                if body.get("ResponseType") not in ("Completed", "Cancelled"):
                    return self._error(400, "400.003.01", "Invalid ResponseType")
                fake.c2b_urls[str(body["ShortCode"])] = urls
                fake.say(f"paybill {body['ShortCode']}: C2B URLs registered")
                return self._answer(
                    200,
                    {
                        "OriginatorCoversationID": secrets.token_hex(8),
                        "ResponseCode": "0",
                        "ResponseDescription": "success",
                    },
                )

            def _query(self, body: dict[str, Any]) -> None:
                push = fake.pushes.get(str(body.get("CheckoutRequestID", "")))
                if push is None:
                    return self._error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
                if push.result_code is None:
                    return self._error(500, "500.001.1001", "The transaction is being processed")
                return self._answer(
                    200,
                    {
                        "ResponseCode": "0",
                        "ResponseDescription": "The service request has been accepted successsfully",
                        "MerchantRequestID": push.merchant_id,
                        "CheckoutRequestID": push.checkout_id,
                        "ResultCode": str(push.result_code),
                        "ResultDesc": DESCRIPTIONS.get(push.result_code, "Failed"),
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.fakes.daraja pay-bill``: a customer pays the paybill from the M-Pesa
    menu, against the Daraja fake of a running demo (``make run``)."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.fakes.daraja",
        description="Play the M-Pesa menu against the demo's Daraja fake.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pay = commands.add_parser(
        "pay-bill", help="Lipa na M-Pesa, Pay Bill: the business number, account number, amount"
    )
    pay.add_argument("--shortcode", required=True, help="the paybill's business number")
    pay.add_argument("--account", required=True, help="the account number: a loan's SC-…")
    pay.add_argument("--amount", required=True, help="whole shillings")
    port = os.environ.get("DEMO_DARAJA_PORT", "8701")
    pay.add_argument(
        "--url",
        default=f"http://127.0.0.1:{port}",
        help="the demo's Daraja fake (default: http://127.0.0.1:$DEMO_DARAJA_PORT, 8701)",
    )
    args = parser.parse_args(argv)
    try:
        answer = requests.post(
            f"{args.url.rstrip('/')}/demo/pay-bill",
            data={"shortcode": args.shortcode, "account": args.account, "amount": args.amount},
            headers={"Accept": "application/json"},
            timeout=60,
        )
    except requests.RequestException:
        print(f"No Daraja fake at {args.url}: is `make run` running?", file=sys.stderr)
        return 2
    outcome = answer.json()
    print(outcome["message"])
    return 0 if outcome["paid"] else 1


if __name__ == "__main__":
    sys.exit(main())
