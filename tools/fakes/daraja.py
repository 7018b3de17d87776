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
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
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

    def pay_bill(self, *, shortcode: str, account: str, amount: Any) -> tuple[dict[str, Any], int]:
        """A customer pays ``amount`` to the paybill with ``account`` as the account number:
        Daraja asks the validation URL first, and on acceptance takes the money and sends the
        confirmation. Returns the validation's answer and the confirmation's HTTP status (0
        when refused at validation)."""
        confirmation_url, validation_url = self.c2b_urls[shortcode]
        body = self.c2b_body(shortcode=shortcode, account=account, amount=amount)
        answer = requests.post(validation_url, json=body, timeout=15).json()
        if str(answer.get("ResultCode")) != "0":
            return answer, 0
        return answer, requests.post(confirmation_url, json=body, timeout=15).status_code

    def start(self) -> str:
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

            def do_GET(self) -> None:
                url = urlsplit(self.path)
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
