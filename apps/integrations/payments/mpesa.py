"""Safaricom's M-Pesa (Daraja API): an access token, the STK push ("Lipa na M-Pesa Online":
the customer gets a PIN prompt for the exact amount), its status query, and the STK callback.

Plain ``requests``, already one of the product's clients: Daraja is four JSON calls, and
the Python packages that wrap them add a dependency without taking any work off ours (the
token's lifetime, Daraja's error shapes, the callback's parsing are ours to get right
anyway). Documented shapes: developer.safaricom.co.ke (M-Pesa Express, Authorization).

No secret or phone number reaches a log: a failure is logged by its Daraja error code.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests
from django.conf import settings

# Daraja's clock and its timestamps are Nairobi's
NAIROBI = ZoneInfo("Africa/Nairobi")
BASE_URLS = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
}
# STK query: the push is still waiting for the customer's PIN
STILL_PROCESSING = "500.001.1001"
TIMEOUT = 15  # seconds per call


class DarajaError(Exception):
    """Daraja refused a call: its error code (e.g. 400.002.02) and message, or the HTTP
    status when the answer carries none."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class MpesaAccount:
    """A lender's Daraja app and paybill (from its provider account)."""

    shortcode: str
    passkey: str
    consumer_key: str
    consumer_secret: str
    environment: str = "sandbox"


@dataclass(frozen=True, slots=True)
class StkPushAccepted:
    merchant_request_id: str
    checkout_request_id: str
    customer_message: str


@dataclass(frozen=True, slots=True)
class StkStatus:
    """Where an STK push stands: ``pending`` while the customer has not answered; else its
    result code (0 paid; 1032 cancelled; 1037 no answer; 1 not enough funds)."""

    pending: bool
    result_code: int | None
    result_desc: str

    @property
    def paid(self) -> bool:
        return not self.pending and self.result_code == 0


@dataclass(frozen=True, slots=True)
class StkResult:
    """What an STK callback says: the push it answers and, when paid, the M-Pesa receipt
    number (the reference the customer has in their SMS), amount, paying number and time."""

    merchant_request_id: str
    checkout_request_id: str
    result_code: int
    result_desc: str
    receipt: str = ""
    amount: Decimal | None = None
    phone: str = ""
    paid_at: datetime | None = None

    @property
    def paid(self) -> bool:
        return self.result_code == 0


class CallbackMalformed(ValueError):
    """A body that is not an STK callback."""


# access tokens by app (a hash of its credentials), with the monotonic time they expire: Daraja gives
# one an hour, and asking for one per call would double every call
_tokens: dict[str, tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class DarajaClient:
    def __init__(
        self,
        account: MpesaAccount,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.account = account
        self.base_url = (
            base_url or settings.MPESA_API_BASE or BASE_URLS[account.environment]
        ).rstrip("/")
        self.http = session or requests.Session()

    # --- calls ------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token for the app, asked for again a minute before it expires."""
        # by the whole credential: a secret changed in the back office asks for a new token
        key = hashlib.sha256(
            f"{self.base_url}|{self.account.consumer_key}|{self.account.consumer_secret}".encode()
        ).hexdigest()
        with _tokens_lock:  # held for the cache only, never across a call to Daraja
            cached = _tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        answer = self.http.get(
            f"{self.base_url}/oauth/v1/generate",
            params={"grant_type": "client_credentials"},
            auth=(self.account.consumer_key, self.account.consumer_secret),
            timeout=TIMEOUT,
        )
        body = self._json(answer)
        token = str(body.get("access_token", ""))
        if not token:
            raise DarajaError(str(answer.status_code), "no access token in the answer")
        lifetime = int(body.get("expires_in", 3599))
        with _tokens_lock:
            _tokens[key] = (token, time.monotonic() + max(lifetime - 60, 0))
        return token

    def stk_push(
        self,
        *,
        amount: Decimal,
        phone: str,
        account_reference: str,
        description: str,
        callback_url: str,
    ) -> StkPushAccepted:
        """Ask M-Pesa to prompt ``phone`` (2547XXXXXXXX) for ``amount`` shillings (whole:
        M-Pesa takes no cents; rounded up so the loan is never short) to the paybill,
        with ``account_reference`` (the loan's reference, at most 12 characters)."""
        shillings = int(amount.to_integral_value(rounding=ROUND_CEILING))
        if shillings < 1:
            raise DarajaError("amount", "M-Pesa takes at least 1 shilling")
        timestamp, password = self._password()
        body = self._post(
            "/mpesa/stkpush/v1/processrequest",
            {
                "BusinessShortCode": self.account.shortcode,
                "Password": password,
                "Timestamp": timestamp,
                "TransactionType": "CustomerPayBillOnline",
                "Amount": shillings,
                "PartyA": phone,
                "PartyB": self.account.shortcode,
                "PhoneNumber": phone,
                "CallBackURL": callback_url,
                "AccountReference": account_reference[:12],
                "TransactionDesc": description[:13],
            },
        )
        if str(body.get("ResponseCode")) != "0":
            raise DarajaError(
                str(body.get("ResponseCode", "")), str(body.get("ResponseDescription", ""))
            )
        return StkPushAccepted(
            merchant_request_id=str(body["MerchantRequestID"]),
            checkout_request_id=str(body["CheckoutRequestID"]),
            customer_message=str(body.get("CustomerMessage", "")),
        )

    def stk_query(self, *, checkout_request_id: str) -> StkStatus:
        """Where the push ``checkout_request_id`` stands (a doubtful callback is checked
        with this before it is applied; a push with no callback is asked about)."""
        timestamp, password = self._password()
        try:
            body = self._post(
                "/mpesa/stkpushquery/v1/query",
                {
                    "BusinessShortCode": self.account.shortcode,
                    "Password": password,
                    "Timestamp": timestamp,
                    "CheckoutRequestID": checkout_request_id,
                },
            )
        except DarajaError as error:
            if error.code == STILL_PROCESSING:
                return StkStatus(pending=True, result_code=None, result_desc=error.message)
            raise
        return StkStatus(
            pending=False,
            result_code=int(body["ResultCode"]),
            result_desc=str(body.get("ResultDesc", "")),
        )

    # --- helpers ----------------------------------------------------------------------

    def _password(self) -> tuple[str, str]:
        """Daraja's request password: base64(shortcode + passkey + timestamp), with the
        timestamp (Nairobi time, YYYYMMDDHHMMSS) it was made for."""
        timestamp = datetime.now(NAIROBI).strftime("%Y%m%d%H%M%S")
        raw = f"{self.account.shortcode}{self.account.passkey}{timestamp}".encode()
        return timestamp, base64.b64encode(raw).decode()

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(
            f"{self.base_url}{path}",
            json=payload,
            headers={"Authorization": f"Bearer {self.access_token()}"},
            timeout=TIMEOUT,
        )
        return self._json(answer)

    @staticmethod
    def _json(answer: requests.Response) -> dict[str, Any]:
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if answer.status_code >= 400 or "errorCode" in body:
            raise DarajaError(
                str(body.get("errorCode") or answer.status_code),
                str(body.get("errorMessage") or answer.reason or ""),
            )
        return body


def stk_callback_parse(body: Any) -> StkResult:
    """The STK callback's JSON (``{"Body": {"stkCallback": ...}}``) as an ``StkResult``, or
    ``CallbackMalformed``. Its metadata items come only with a payment."""
    try:
        callback = body["Body"]["stkCallback"]
        result = StkResult(
            merchant_request_id=str(callback["MerchantRequestID"]),
            checkout_request_id=str(callback["CheckoutRequestID"]),
            result_code=int(callback["ResultCode"]),
            result_desc=str(callback.get("ResultDesc", "")),
        )
        if result.result_code != 0:
            return result
        items = {i["Name"]: i.get("Value") for i in callback["CallbackMetadata"]["Item"]}
        paid_at = datetime.strptime(  # Nairobi time, with no zone: given one below
            str(items["TransactionDate"]), "%Y%m%d%H%M%S"
        ).replace(tzinfo=NAIROBI)
        return StkResult(
            merchant_request_id=result.merchant_request_id,
            checkout_request_id=result.checkout_request_id,
            result_code=0,
            result_desc=result.result_desc,
            receipt=str(items["MpesaReceiptNumber"]),
            amount=Decimal(str(items["Amount"])),
            phone=str(items.get("PhoneNumber", "")),
            paid_at=paid_at,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CallbackMalformed("not an STK callback") from exc
