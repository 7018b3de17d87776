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
import functools
import hashlib
import ipaddress
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests
from django.conf import settings

from apps.core.money import Money
from apps.integrations.payments.base import (
    CallbackRefused,
    EventKind,
    PaymentEvent,
    PaymentRequest,
    PaymentStatus,
    ProviderCallback,
    ProviderError,
    SettledPayment,
    StartedPayment,
    StartKind,
    StatusKind,
)
from apps.integrations.payments.signing import path_token_matches

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
        try:
            code = int(body["ResultCode"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DarajaError("malformed", "no result code in the query's answer") from exc
        return StkStatus(
            pending=False, result_code=code, result_desc=str(body.get("ResultDesc", ""))
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


# --- C2B: the customer pays the paybill from the M-Pesa menu ---------------------------

# Daraja's answers to a C2B validation: take the payment, or refuse it before the money moves
C2B_ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
C2B_REJECT_ACCOUNT = {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}  # invalid account
C2B_REJECT_AMOUNT = {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}  # invalid amount
# what Daraja wants back from every other callback, whatever we made of it
CALLBACK_RECEIVED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@dataclass(frozen=True, slots=True)
class C2BPayment:
    """A paybill payment (a C2B validation or confirmation): the M-Pesa receipt (TransID),
    the paybill it went to, the account number the customer typed, amount and time."""

    receipt: str
    shortcode: str
    account: str
    amount: Decimal
    paid_at: datetime


def c2b_parse(body: Any) -> C2BPayment:
    """A C2B validation or confirmation body, or ``CallbackMalformed``."""
    try:
        amount = Decimal(str(body["TransAmount"]))
        if not amount.is_finite():
            raise ValueError("amount")
        return C2BPayment(
            receipt=str(body["TransID"]).strip(),
            shortcode=str(body["BusinessShortCode"]).strip(),
            account=str(body.get("BillRefNumber") or "").strip(),
            amount=amount,
            paid_at=datetime.strptime(str(body["TransTime"]), "%Y%m%d%H%M%S").replace(
                tzinfo=NAIROBI
            ),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CallbackMalformed("not a C2B payment") from exc


def _register_c2b(client: DarajaClient, *, confirmation_url: str, validation_url: str) -> None:
    client._post(
        "/mpesa/c2b/v1/registerurl",
        {
            "ShortCode": client.account.shortcode,
            # when our validation cannot be reached, M-Pesa takes the money anyway: a
            # customer paying from the menu is never turned away by our outage
            "ResponseType": "Completed",
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        },
    )


# --- the adapter ------------------------------------------------------------------------


class Route:
    """Which of Daraja's callbacks a request is (the path it came to)."""

    STK = "stk"
    C2B_VALIDATION = "c2b-validation"
    C2B_CONFIRMATION = "c2b-confirmation"


@functools.lru_cache(maxsize=4)
def _networks(
    allowed: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The allow-list's networks, parsed once per list (not on every callback)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _source_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.MPESA_CALLBACK_ALLOWED_IPS)))


class MpesaAdapter:
    """A lender's paybill on M-Pesa: the STK push, its callback, C2B paybill payments and
    the status query. Daraja signs nothing, so a callback is taken only on the lender's
    secret path, from Safaricom's addresses, for the lender's own paybill; the amount and
    the payment we started are checked by ``apps.collections``."""

    provider = "mpesa"

    def __init__(self, account: MpesaAccount, *, lender_slug: str) -> None:
        self.client = DarajaClient(account)
        self.lender_slug = lender_slug

    def start(self, request: PaymentRequest) -> StartedPayment:
        if request.amount.currency != "KES":
            raise ProviderError("currency", "M-Pesa takes Kenyan shillings only")
        phone = request.phone.removeprefix("+")
        if not (len(phone) == 12 and phone.startswith("254") and phone.isdigit()):
            raise ProviderError("phone", "M-Pesa needs a Kenyan mobile number")
        try:
            accepted = self.client.stk_push(
                amount=request.amount.amount,
                phone=phone,
                account_reference=request.loan_reference,
                description=request.description,
                callback_url=request.callback_url,
            )
        except (DarajaError, requests.RequestException) as exc:
            raise _provider_error(exc) from exc
        shillings = request.amount.amount.to_integral_value(rounding=ROUND_CEILING)
        return StartedPayment(
            attempt_ref=accepted.checkout_request_id,
            kind=StartKind.PUSH,
            amount=Money(shillings, "KES"),
            message=accepted.customer_message,
        )

    def parse_callback(self, callback: ProviderCallback) -> list[PaymentEvent]:
        if not path_token_matches(
            given=callback.path_token, lender_slug=self.lender_slug, provider=self.provider
        ):
            raise CallbackRefused("path_token_invalid", "The callback's path is not ours.")
        if not _source_allowed(callback.remote_addr):
            raise CallbackRefused("source_not_allowed", "Not one of Safaricom's addresses.")
        try:
            body = json.loads(callback.body)
            if callback.route == Route.STK:
                return [self._stk_event(stk_callback_parse(body))]
            if callback.route in (Route.C2B_VALIDATION, Route.C2B_CONFIRMATION):
                return [self._c2b_event(c2b_parse(body), route=callback.route)]
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise CallbackRefused("malformed", "The body is not JSON.") from exc
        except CallbackMalformed as exc:
            raise CallbackRefused("malformed", str(exc)) from exc
        raise CallbackRefused("malformed", "No such M-Pesa callback.")

    def _stk_event(self, result: StkResult) -> PaymentEvent:
        if not result.paid:
            return PaymentEvent(
                provider=self.provider,
                event_id=f"stk:{result.checkout_request_id}",
                event_type="stk.failed",
                kind=EventKind.FAILED,
                received_at=_now(),
                attempt_ref=result.checkout_request_id,
                detail=f"{result.result_code}: {result.result_desc}"[:200],
            )
        if result.amount is None or result.paid_at is None:  # stk_callback_parse gives both
            raise CallbackRefused("malformed", "A payment with no amount or time.")
        return PaymentEvent(
            provider=self.provider,
            event_id=f"stk:{result.checkout_request_id}",
            event_type="stk.paid",
            kind=EventKind.PAID,
            received_at=min(result.paid_at, _now()),
            amount=Money(result.amount, "KES"),
            reference=result.receipt,
            receipt=result.receipt,
            attempt_ref=result.checkout_request_id,
            kept_if_refused=True,
        )

    def _c2b_event(self, payment: C2BPayment, *, route: str) -> PaymentEvent:
        if payment.shortcode != self.client.account.shortcode:
            raise CallbackRefused("account_mismatch", "Paid to another paybill.", verified=True)
        confirmed = route == Route.C2B_CONFIRMATION
        return PaymentEvent(
            provider=self.provider,
            event_id=f"c2b:{payment.receipt}",
            event_type="c2b.confirmation" if confirmed else "c2b.validation",
            kind=EventKind.PAID if confirmed else EventKind.PENDING,
            received_at=min(payment.paid_at, _now()),
            amount=Money(payment.amount, "KES"),
            reference=payment.receipt,
            receipt=payment.receipt,
            loan_reference=payment.account,
            account=payment.shortcode,
            kept_if_refused=confirmed,
        )

    def status(self, *, attempt_ref: str) -> PaymentStatus:
        try:
            found = self.client.stk_query(checkout_request_id=attempt_ref)
        except (DarajaError, requests.RequestException) as exc:
            raise _provider_error(exc) from exc
        if found.pending:
            return PaymentStatus(state=StatusKind.PENDING, detail=found.result_desc[:200])
        if found.paid:
            # the query says paid but names neither the receipt nor the time: the STK
            # request id stands for the receipt until the callback brings it
            return PaymentStatus(state=StatusKind.PAID, reference=attempt_ref)
        return PaymentStatus(
            state=StatusKind.FAILED, detail=f"{found.result_code}: {found.result_desc}"[:200]
        )

    def settled(self, *, start: datetime, end: datetime) -> list[SettledPayment] | None:
        return None  # Daraja lists no settled payments without the org portal's statements

    def register_c2b_urls(self, *, confirmation_url: str, validation_url: str) -> None:
        """Tell M-Pesa where to send the paybill's C2B validations and confirmations."""
        try:
            _register_c2b(
                self.client, confirmation_url=confirmation_url, validation_url=validation_url
            )
        except (DarajaError, requests.RequestException) as exc:
            raise _provider_error(exc) from exc


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _provider_error(exc: Exception) -> ProviderError:
    if isinstance(exc, DarajaError):
        return ProviderError(exc.code, exc.message)
    return ProviderError("unreachable", type(exc).__name__)
