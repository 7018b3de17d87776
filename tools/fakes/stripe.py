"""A loopback stand-in for Stripe's API: Checkout Sessions, PaymentIntents, and the webhook
events Stripe sends as a customer pays by card or OXXO voucher, is refunded or disputes.

It speaks Stripe's documented requests, answers and errors, at the API version the pinned
``stripe`` client sends, so the product's adapter (``apps.integrations.payments.
stripe_checkout``) runs Stripe's own client against it:

* every ``/v1`` call takes ``Authorization: Bearer sk_...``: 401 for a key it does not know;
  form-encoded parameters in bracket notation (``line_items[0][price_data][currency]``);
  errors as ``{"error": {"type", "code", "message", "param"}}`` with 400, 401 or 404;
* ``POST /v1/checkout/sessions`` (mode ``payment``): checks the line items (a lower-case
  currency, a whole ``unit_amount`` of at least 1), the payment methods (``card``; ``oxxo``
  only in ``mxn``, as Stripe refuses it otherwise, with ``expires_after_days`` 1 to 7) and
  refuses a parameter it does not know; an ``Idempotency-Key`` seen before returns the first
  answer, or ``idempotency_error`` when the parameters differ;
* ``GET /v1/checkout/sessions/{id}``, ``GET /v1/payment_intents/{id}`` (``expand[]``, also
  nested: ``payment_intent.latest_charge``), ``GET /v1/payment_intents`` (``created[gte|gt|
  lt|lte]``, ``limit``, ``starting_after``, ``has_more``; newest first). An object belongs
  to the key that made it: another key gets 404, as another Stripe account would;
* the hosted pages: ``GET /pay/{session}`` (the Checkout page, with "Pay by card" and, in
  pesos, "OXXO voucher"; each posts back, settles, and redirects to ``success_url``) and
  ``GET /voucher/{payment_intent}`` (the printable voucher).

Driver methods play the customer and the card networks: ``pay_card``, ``issue_oxxo``,
``settle_oxxo``, ``lapse_oxxo`` (the voucher expired unpaid), ``expire``, ``refund``,
``settle_refund``, ``dispute``. Each builds the events Stripe would send, keeps them in
``events`` and, for each endpoint registered with ``webhook(url, secret)``, POSTs them signed
as Stripe does (``sign_webhook``); ``deliver`` sends one again and ``signed`` gives its body
and headers to a test. ``requests`` records each API call's parameters. No secret is printed.

In the demo (``demo=True``, ``tools.fakes.demo``) the hosted pages play the customer and the
shop too: an OXXO voucher is shown on a page of its own (as Stripe's Checkout shows it) with a
link back to the lender, the voucher's page has a "Pay at the store (demo)" button
(``settle_oxxo``), ``GET /`` is the store's till listing the vouchers open, and it says on
stdout what it sends.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

API_VERSION = "2026-10-28.endive"  # the version the pinned client sends
# Mexico City keeps UTC-6 all year since 2022; an OXXO voucher expires at 23:59 there
MEXICO_CITY = timezone(timedelta(hours=-6))
SESSION_PARAMS = {
    "mode",
    "line_items",
    "allowed_payment_method_types",
    "payment_method_options",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "metadata",
    "payment_intent_data",
    "customer_email",
    "expires_at",
    "locale",
    "expand",
}
METHODS = {"card": None, "oxxo": "mxn"}  # the methods this fake offers, and the one currency


class StripeFault(Exception):
    """An answer in Stripe's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": kind, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param


def sign_webhook(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``body``: ``t=<unix seconds>,
    v1=<hex HMAC-SHA256 with the endpoint's secret over "<t>.<body>">``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def _nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation (``a[b][0][c]=v``, ``a[]=v``) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0], *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise StripeFault(400, f"Invalid value for {key}.", param=key)
        last = parts[-1] if parts[-1] else str(len(node))
        node[last] = value

    def lists(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if value and all(k.isdigit() for k in value):
            return [lists(value[k]) for k in sorted(value, key=int)]
        return {k: lists(v) for k, v in value.items()}

    nested: dict[str, Any] = lists(root)
    return nested


def _int(params: dict[str, Any], name: str, label: str | None = None) -> int:
    value = params.get(name)
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value):
        raise StripeFault(
            400, f"Invalid integer: {value}", param=label or name, code="parameter_invalid_integer"
        )
    return int(value)


def _new_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


@dataclass
class Endpoint:
    url: str
    secret: str
    api_key: str | None  # None: every account's events


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None


@dataclass
class Delivery:
    event_id: str
    url: str
    status: int  # 0: not reached


class FakeStripe:
    def __init__(self, api_keys: Iterable[str] = (), *, demo: bool = False) -> None:
        self.api_keys: set[str] = set(api_keys)
        self.demo = demo
        self.endpoints: list[Endpoint] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.requests: list[Call] = []
        self.clock: Callable[[], float] = time.time
        self.base = ""
        self._owner: dict[str, str] = {}  # object or event id -> the key (account) it is in
        self._order: dict[str, int] = {}  # object id -> creation order, for lists
        self._seq = itertools.count(1)
        self._pi_metadata: dict[str, dict[str, str]] = {}  # session id -> payment_intent_data
        self._idempotent: dict[tuple[str, str], tuple[dict[str, Any], int, dict[str, Any]]] = {}
        self._lock = threading.RLock()

    # --- setup ------------------------------------------------------------------------

    def api_key(self, key: str) -> None:
        """Accept ``key`` (a Stripe account's secret key)."""
        self.api_keys.add(key)

    def webhook(self, url: str, secret: str, *, api_key: str | None = None) -> None:
        """Send events to ``url`` signed with ``secret``: every account's, or ``api_key``'s."""
        self.endpoints.append(Endpoint(url, secret, api_key))

    def now(self) -> int:
        return int(self.clock())

    # --- the customer, the networks, the lender's dashboard ---------------------------

    def pay_card(self, session_id: str) -> list[dict[str, Any]]:
        """The customer pays the open session by card: a PaymentIntent that succeeded."""
        with self._lock:
            session = self._open(session_id)
            intent = self._intent(session, "card")
            created = self._event("payment_intent.created", intent)
            charge = self._charge(intent)
            intent.update(status="succeeded", amount_received=intent["amount"])
            self._complete(session, intent, paid=True)
            events = [
                created,
                self._event("charge.succeeded", charge),
                self._event("payment_intent.succeeded", intent),
                self._event("checkout.session.completed", session),
            ]
        return self._send(events)

    def issue_oxxo(self, session_id: str) -> list[dict[str, Any]]:
        """The customer takes an OXXO voucher: the session completes unpaid, and its
        PaymentIntent shows the voucher (number, expiry, printable page) as its next action."""
        with self._lock:
            session = self._open(session_id)
            if "oxxo" not in session["payment_method_types"]:
                raise ValueError("this session does not offer OXXO")
            intent = self._intent(session, "oxxo")
            created = self._event("payment_intent.created", intent)
            days = int(session["payment_method_options"]["oxxo"]["expires_after_days"])
            local = datetime.fromtimestamp(self.now(), MEXICO_CITY) + timedelta(days=days)
            expires = local.replace(hour=23, minute=59, second=59, microsecond=0)
            intent.update(
                status="requires_action",
                next_action={
                    "type": "oxxo_display_details",
                    "oxxo_display_details": {
                        "expires_after": int(expires.timestamp()),
                        "hosted_voucher_url": f"{self.base}/voucher/{intent['id']}",
                        "number": "".join(secrets.choice(string.digits) for _ in range(32)),
                    },
                },
            )
            self._complete(session, intent, paid=False)
            events = [
                created,
                self._event("payment_intent.requires_action", intent),
                self._event("checkout.session.completed", session),
            ]
        return self._send(events)

    def settle_oxxo(self, session_id: str) -> list[dict[str, Any]]:
        """The customer paid the voucher at a shop: the money arrives days later."""
        with self._lock:
            session, intent = self._voucher_session(session_id)
            charge = self._charge(intent)
            intent.update(status="succeeded", amount_received=intent["amount"], next_action=None)
            session["payment_status"] = "paid"
            events = [
                self._event("charge.succeeded", charge),
                self._event("payment_intent.succeeded", intent),
                self._event("checkout.session.async_payment_succeeded", session),
            ]
        return self._send(events)

    def lapse_oxxo(self, session_id: str) -> list[dict[str, Any]]:
        """The voucher expired unpaid: the payment failed."""
        with self._lock:
            session, intent = self._voucher_session(session_id)
            intent.update(
                status="requires_payment_method",
                next_action=None,
                last_payment_error={
                    "type": "invalid_request_error",
                    "code": "payment_intent_payment_attempt_expired",
                    "message": "The OXXO voucher expired before it was paid.",
                },
            )
            events = [
                self._event("payment_intent.payment_failed", intent),
                self._event("checkout.session.async_payment_failed", session),
            ]
        return self._send(events)

    def expire(self, session_id: str) -> list[dict[str, Any]]:
        """The open session expired (24 hours by default) with nothing paid."""
        with self._lock:
            session = self._open(session_id)
            session.update(status="expired", url=None)
            events = [self._event("checkout.session.expired", session)]
        return self._send(events)

    def refund(
        self, pi_id: str, amount: int | None = None, *, status: str = "succeeded"
    ) -> list[dict[str, Any]]:
        """The lender refunds ``amount`` (default: all that is left) of a payment. A card
        refund succeeds at once; ``status="pending"`` plays one that settles later
        (``settle_refund``)."""
        with self._lock:
            intent = self.payment_intents[pi_id]
            if intent["status"] != "succeeded":
                raise ValueError("only a payment that succeeded can be refunded")
            charge = self.charges[intent["latest_charge"]]
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            if not 1 <= amount <= left:
                raise ValueError(f"a refund is between 1 and {left}")
            refund = self._object(
                self.refunds,
                "re_",
                intent["id"],
                object="refund",
                amount=amount,
                charge=charge["id"],
                currency=charge["currency"],
                metadata={},
                payment_intent=intent["id"],
                reason="requested_by_customer",
                status=status,
            )
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            events = [self._event("refund.created", refund), self._event("charge.refunded", charge)]
        return self._send(events)

    def settle_refund(self, refund_id: str) -> list[dict[str, Any]]:
        with self._lock:
            refund = self.refunds[refund_id]
            before = refund["status"]
            refund["status"] = "succeeded"
            events = [self._event("refund.updated", refund, {"status": before})]
        return self._send(events)

    def dispute(
        self, pi_id: str, amount: int | None = None, *, inquiry: bool = False
    ) -> list[dict[str, Any]]:
        """The customer's bank disputes a payment: a chargeback (its funds withdrawn), or an
        inquiry (``inquiry=True``) that takes no money."""
        with self._lock:
            intent = self.payment_intents[pi_id]
            charge = self.charges[intent["latest_charge"]]
            dispute = self._object(
                self.disputes,
                "dp_",
                intent["id"],
                object="dispute",
                amount=charge["amount"] if amount is None else amount,
                charge=charge["id"],
                currency=charge["currency"],
                evidence={},
                is_charge_refundable=inquiry,
                metadata={},
                payment_intent=intent["id"],
                reason="fraudulent",
                status="warning_needs_response" if inquiry else "needs_response",
            )
            charge["disputed"] = True
            events = [self._event("charge.dispute.created", dispute)]
            if not inquiry:
                events.append(self._event("charge.dispute.funds_withdrawn", dispute))
        return self._send(events)

    # --- webhooks ---------------------------------------------------------------------

    @staticmethod
    def payload(event: dict[str, Any]) -> bytes:
        return json.dumps(event, indent=2).encode()

    def signed(
        self, event: dict[str, Any], secret: str, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """``event``'s body and headers (lower-case names) as Stripe sends it, signed with
        ``secret`` at ``timestamp`` (now by default)."""
        body = self.payload(event)
        return body, {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": sign_webhook(body, secret, timestamp),
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    def deliver(self, event: dict[str, Any], timestamp: int | None = None) -> list[int]:
        """POST ``event`` to each endpoint of its account, signed at ``timestamp`` (now by
        default): the HTTP status of each answer, 0 where none came."""
        statuses = []
        owner = self._owner.get(event["id"])
        for endpoint in self.endpoints:
            if endpoint.api_key not in (None, owner):
                continue
            body, headers = self.signed(event, endpoint.secret, timestamp)
            try:
                status = requests.post(
                    endpoint.url, data=body, headers=headers, timeout=30
                ).status_code
            except requests.RequestException:
                status = 0
            self.deliveries.append(Delivery(event["id"], endpoint.url, status))
            statuses.append(status)
        return statuses

    def _send(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # outside the lock: the endpoint may call the API back
        answers = [f"{event['type']} {self.deliver(event)}" for event in events]
        self.say("sent " + ", ".join(answers))
        return events

    def say(self, line: str) -> None:
        if self.demo:
            print(f"stripe: {line}", flush=True)

    # --- state ------------------------------------------------------------------------

    def _object(
        self, table: dict[str, dict[str, Any]], prefix: str, owner_of: str, **fields: Any
    ) -> dict[str, Any]:
        obj = {"id": _new_id(prefix), "created": self.now(), "livemode": False, **fields}
        table[obj["id"]] = obj
        self._owner[obj["id"]] = self._owner[owner_of]
        self._order[obj["id"]] = next(self._seq)
        return obj

    def _open(self, session_id: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        if session["status"] != "open":
            raise ValueError(f"the session is {session['status']}")
        return session

    def _voucher_session(self, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        session = self.sessions[session_id]
        intent = self.payment_intents.get(session["payment_intent"] or "")
        if intent is None or intent["status"] != "requires_action":
            raise ValueError("no voucher waits on this session")
        return session, intent

    def _intent(self, session: dict[str, Any], method: str) -> dict[str, Any]:
        """The session's PaymentIntent, made as the customer confirms (Checkout makes none
        before)."""
        return self._object(
            self.payment_intents,
            "pi_",
            session["id"],
            object="payment_intent",
            amount=session["amount_total"],
            amount_received=0,
            currency=session["currency"],
            description=None,
            last_payment_error=None,
            latest_charge=None,
            metadata=dict(self._pi_metadata[session["id"]]),
            next_action=None,
            payment_method_types=[method],
            status="requires_payment_method",
        )

    def _charge(self, intent: dict[str, Any]) -> dict[str, Any]:
        charge = self._object(
            self.charges,
            "ch_",
            intent["id"],
            object="charge",
            amount=intent["amount"],
            amount_captured=intent["amount"],
            amount_refunded=0,
            currency=intent["currency"],
            disputed=False,
            metadata=dict(intent["metadata"]),
            paid=True,
            payment_intent=intent["id"],
            payment_method_details={"type": intent["payment_method_types"][0]},
            refunded=False,
            status="succeeded",
        )
        intent["latest_charge"] = charge["id"]
        return charge

    def _complete(self, session: dict[str, Any], intent: dict[str, Any], *, paid: bool) -> None:
        session.update(
            status="complete",
            payment_status="paid" if paid else "unpaid",
            payment_intent=intent["id"],
            url=None,
        )

    def _event(
        self, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None and kind.endswith(".updated"):
            data["previous_attributes"] = previous
        owner = self._owner[obj["id"]]
        event_id = _new_id("evt_")
        event: dict[str, Any] = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": sum(e.api_key in (None, owner) for e in self.endpoints),
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        self._owner[event_id] = owner
        self.events.append(event)
        return event

    def _find(self, object_id: str) -> dict[str, Any] | None:
        for table in (
            self.sessions,
            self.payment_intents,
            self.charges,
            self.refunds,
            self.disputes,
        ):
            if object_id in table:
                return table[object_id]
        return None

    def _expand(self, value: Any, path: list[str], key: str) -> Any:
        """``value`` with the ids along ``path`` replaced by their objects (``data`` walks a
        list), as ``expand[]=a.b`` asks."""
        if not path or not isinstance(value, dict):
            return value
        head, rest = path[0], path[1:]
        if head == "data" and value.get("object") == "list":
            value["data"] = [self._expand(item, rest, key) for item in value["data"]]
            return value
        if head not in value:
            raise StripeFault(
                400,
                f"This property cannot be expanded ({head}).",
                param="expand",
                code="parameter_invalid",
            )
        field = value[head]
        if isinstance(field, str):
            found = self._find(field)
            if found is not None and self._owner.get(field) == key:
                field = copy.deepcopy(found)
        value[head] = self._expand(field, rest, key)
        return value

    # --- the API ----------------------------------------------------------------------

    def _create_session(self, key: str, params: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - SESSION_PARAMS)
        if unknown:
            raise StripeFault(
                400,
                f"Received unknown parameter: {unknown[0]}",
                param=unknown[0],
                code="parameter_unknown",
            )
        if params.get("mode") != "payment":
            raise StripeFault(
                400, "This fake takes mode=payment only.", param="mode", code="parameter_invalid"
            )
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeFault(
                400,
                "line_items is required in payment mode.",
                param="line_items",
                code="parameter_missing",
            )
        currencies, total = set(), 0
        for n, item in enumerate(items):
            price = item.get("price_data") if isinstance(item, dict) else None
            where = f"line_items[{n}][price_data]"
            if not isinstance(price, dict):
                raise StripeFault(
                    400, f"Missing required param: {where}.", param=where, code="parameter_missing"
                )
            currency = price.get("currency", "")
            if not isinstance(currency, str) or not re.fullmatch(r"[a-z]{3}", currency):
                raise StripeFault(
                    400,
                    f"Invalid currency: {currency}. Stripe currencies are three lower-case letters.",
                    param=f"{where}[currency]",
                    code="parameter_invalid",
                )
            unit = _int(price, "unit_amount", f"{where}[unit_amount]")
            quantity = _int(item, "quantity", f"line_items[{n}][quantity]")
            if unit < 1 or quantity < 1:
                raise StripeFault(
                    400,
                    "The amount must be at least 1 (in the currency's smallest unit).",
                    param=f"{where}[unit_amount]",
                    code="amount_too_small",
                )
            if not (price.get("product_data") or {}).get("name"):
                raise StripeFault(
                    400,
                    f"Missing required param: {where}[product_data][name].",
                    param=f"{where}[product_data][name]",
                    code="parameter_missing",
                )
            currencies.add(currency)
            total += unit * quantity
        if len(currencies) != 1:
            raise StripeFault(400, "All line items must share one currency.", param="line_items")
        currency = currencies.pop()
        methods = params.get("allowed_payment_method_types") or ["card"]
        for n, method in enumerate(methods):
            if method not in METHODS:
                raise StripeFault(
                    400,
                    f"Invalid allowed_payment_method_types[{n}]: {method}",
                    param=f"allowed_payment_method_types[{n}]",
                    code="parameter_invalid",
                )
            only = METHODS[method]
            if only is not None and only != currency:
                raise StripeFault(
                    400,
                    f"The currency provided ({currency}) is invalid for one or more payment "
                    f"method types on this Checkout Session. Payment method type {method} only "
                    f"supports the following currencies: {only}.",
                    param="allowed_payment_method_types",
                    code="parameter_invalid",
                )
        options = params.get("payment_method_options") or {}
        if "oxxo" in options:
            days = _int(
                options["oxxo"],
                "expires_after_days",
                "payment_method_options[oxxo][expires_after_days]",
            )
            if not 1 <= days <= 7:
                raise StripeFault(
                    400,
                    "expires_after_days must be between 1 and 7.",
                    param="payment_method_options[oxxo][expires_after_days]",
                    code="parameter_invalid",
                )
        elif "oxxo" in methods:
            options = {**options, "oxxo": {"expires_after_days": "3"}}
        for name in ("success_url", "cancel_url"):
            url = params.get(name)
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                raise StripeFault(400, "Not a valid URL", param=name, code="url_invalid")
        for name, metadata in (
            ("metadata", params.get("metadata") or {}),
            (
                "payment_intent_data[metadata]",
                (params.get("payment_intent_data") or {}).get("metadata") or {},
            ),
        ):
            if not isinstance(metadata, dict) or any(
                len(k) > 40 or len(str(v)) > 500 for k, v in metadata.items()
            ):
                raise StripeFault(400, f"Invalid {name}.", param=name, code="parameter_invalid")
        session_id = _new_id("cs_test_")
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "allowed_payment_method_types": list(methods),
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": self.now(),
            "currency": currency,
            "customer": None,
            "customer_details": (
                {"email": params["customer_email"]} if params.get("customer_email") else None
            ),
            "customer_email": params.get("customer_email"),
            "expires_at": self.now() + 24 * 3600,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "mode": "payment",
            "payment_intent": None,
            "payment_method_options": {
                k: {kk: int(vv) for kk, vv in v.items()} for k, v in options.items()
            },
            "payment_method_types": list(methods),
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.base}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        self._owner[session_id] = key
        self._order[session_id] = next(self._seq)
        self._pi_metadata[session_id] = dict(
            (params.get("payment_intent_data") or {}).get("metadata") or {}
        )
        return session

    def _get(
        self, key: str, kind: str, param: str, object_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        found = self._find(object_id)
        if found is None or found.get("object") != kind or self._owner.get(object_id) != key:
            raise StripeFault(
                404, f"No such {kind}: '{object_id}'", param=param, code="resource_missing"
            )
        value = copy.deepcopy(found)
        for path in params.get("expand") or []:
            value = self._expand(value, path.split("."), key)
        return value

    def _list_intents(self, key: str, params: dict[str, Any]) -> dict[str, Any]:
        created = params.get("created")
        bounds: dict[str, int] = {}
        if isinstance(created, dict):
            for name in ("gt", "gte", "lt", "lte"):
                if name in created:
                    bounds[name] = _int(created, name, f"created[{name}]")
        elif created is not None:
            bounds = {"gte": _int(params, "created"), "lte": _int(params, "created")}
        limit = _int(params, "limit") if "limit" in params else 10
        if not 1 <= limit <= 100:
            raise StripeFault(
                400, "Limit must be between 1 and 100.", param="limit", code="parameter_invalid"
            )
        tests = {
            "gt": lambda c, b: c > b,
            "gte": lambda c, b: c >= b,
            "lt": lambda c, b: c < b,
            "lte": lambda c, b: c <= b,
        }
        found = [
            i
            for i in self.payment_intents.values()
            if self._owner[i["id"]] == key
            and all(tests[name](i["created"], bound) for name, bound in bounds.items())
        ]
        found.sort(key=lambda i: (i["created"], self._order[i["id"]]), reverse=True)
        after = params.get("starting_after")
        if after:
            ids = [i["id"] for i in found]
            if after not in ids:
                raise StripeFault(
                    400,
                    f"No such payment_intent: '{after}'",
                    param="starting_after",
                    code="resource_missing",
                )
            found = found[ids.index(after) + 1 :]
        page = {
            "object": "list",
            "data": copy.deepcopy(found[:limit]),
            "has_more": len(found) > limit,
            "url": "/v1/payment_intents",
        }
        for path in params.get("expand") or []:
            page = self._expand(page, path.split("."), key)
        return page

    def _api(self, method: str, path: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if method == "POST" and path == "/v1/checkout/sessions":
                return self._create_session(key, params)
            if method == "GET" and path == "/v1/payment_intents":
                return self._list_intents(key, params)
            match = re.fullmatch(r"/v1/(checkout/sessions|payment_intents)/([A-Za-z0-9_]+)", path)
            if method == "GET" and match:
                kind, param = (
                    ("checkout.session", "session")
                    if match[1] == "checkout/sessions"
                    else ("payment_intent", "intent")
                )
                return self._get(key, kind, param, match[2], params)
        raise StripeFault(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    # --- the hosted pages -------------------------------------------------------------

    def _checkout_page(self, session_id: str) -> str:
        session = self.sessions[session_id]
        if session["status"] != "open":
            return "<h1>This Checkout Session is no longer active.</h1>"
        amount = f"{session['currency'].upper()} {session['amount_total']}"
        buttons = [
            f'<form method="post" action="/pay/{session_id}/card">'
            '<button type="submit">Pay by card</button></form>'
        ]
        if "oxxo" in session["payment_method_types"]:
            buttons.append(
                f'<form method="post" action="/pay/{session_id}/oxxo">'
                '<button type="submit">OXXO voucher</button></form>'
            )
        cancel = session.get("cancel_url")
        if cancel:
            buttons.append(f'<a href="{html.escape(cancel)}">Back</a>')
        return (
            f"<h1>Pay {html.escape(amount)} (smallest units)</h1>"
            f"<p>Loan {html.escape(str(session.get('client_reference_id') or ''))}</p>"
            + "".join(buttons)
        )

    def _voucher_page(self, pi_id: str) -> str:
        intent = self.payment_intents[pi_id]
        details = (intent.get("next_action") or {}).get("oxxo_display_details")
        if not details:
            return "<h1>This voucher is no longer payable.</h1>" + self._back(pi_id)
        expires = datetime.fromtimestamp(details["expires_after"], UTC).isoformat()
        page = (
            "<h1>OXXO</h1>"
            f"<p>Amount: {intent['currency'].upper()} {intent['amount']} (smallest units)</p>"
            f"<p>Reference: <strong>{html.escape(details['number'])}</strong></p>"
            f"<p>Expires: {html.escape(expires)}</p>"
        )
        if self.demo:
            page += (
                "<p>Show this reference at the till of any OXXO store and pay in cash.</p>"
                f'<form method="post" action="/voucher/{pi_id}/pay">'
                '<button type="submit">Pay at the store (demo)</button></form>'
            ) + self._back(pi_id)
        return page

    def _session_of(self, pi_id: str) -> dict[str, Any] | None:
        return next((s for s in self.sessions.values() if s["payment_intent"] == pi_id), None)

    def _back(self, pi_id: str) -> str:
        """A link back to the lender's page (the session's success URL), in the demo."""
        session = self._session_of(pi_id)
        target = session.get("success_url") if session else None
        if not self.demo or not target:
            return ""
        return f'<p><a href="{html.escape(target)}">Back to the merchant</a></p>'

    def _store_page(self) -> str:
        """The demo's OXXO till: every voucher waiting to be paid, each with its button."""
        rows = [
            f"<li>{i['currency'].upper()} {i['amount']} (smallest units), reference "
            f"<strong>{html.escape(i['next_action']['oxxo_display_details']['number'])}</strong>"
            f'<form method="post" action="/voucher/{i["id"]}/pay">'
            '<button type="submit">Pay at the store (demo)</button></form></li>'
            for i in self.payment_intents.values()
            if i["status"] == "requires_action" and i.get("next_action")
        ]
        listed = f"<ul>{''.join(rows)}</ul>" if rows else "<p>No voucher is waiting.</p>"
        return "<h1>OXXO store (demo)</h1><p>Vouchers waiting to be paid:</p>" + listed

    def _pay_at_store(self, pi_id: str) -> str:
        session = self._session_of(pi_id)
        if session is None:
            raise ValueError("no session took this voucher")
        self.settle_oxxo(session["id"])
        return "<h1>Paid at the store.</h1><p>The money is on its way.</p>" + self._back(pi_id)

    # --- the server -------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: a request may carry a key
                return

            def _send_body(self, status: int, body: bytes, kind: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Request-Id", _new_id("req_"))
                self.send_header("Stripe-Version", API_VERSION)
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, body: dict[str, Any], **headers: str) -> None:
                self._send_body(status, json.dumps(body).encode(), "application/json", **headers)

            def _key(self) -> str:
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("Bearer ") or not auth[7:]:
                    raise StripeFault(
                        401,
                        "You did not provide an API key. You need to provide your API key in "
                        "the Authorization header, using Bearer auth.",
                    )
                key = auth[7:]
                if key not in fake.api_keys:
                    masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
                    raise StripeFault(401, f"Invalid API Key provided: {masked}")
                return key

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                if not url.path.startswith("/v1/"):
                    return self._page(method, url.path)
                try:
                    key = self._key()
                    params = _nest(
                        parse_qsl(raw if method == "POST" else url.query, keep_blank_values=True)
                    )
                    idempotency = self.headers.get("Idempotency-Key")
                    fake.requests.append(Call(method, url.path, params, idempotency))
                    if method == "POST" and idempotency:
                        seen = fake._idempotent.get((key, idempotency))
                        if seen is not None:
                            if seen[0] != params:
                                raise StripeFault(
                                    400,
                                    "Keys for idempotent requests can only be used with the same "
                                    "parameters they were first used with. Try using a key other "
                                    f"than '{idempotency}' if you meant to execute a different "
                                    "request.",
                                    kind="idempotency_error",
                                )
                            return self._json(seen[1], seen[2], Idempotent_Replayed="true")
                    try:
                        status, body = 200, fake._api(method, url.path, key, params)
                    except StripeFault as fault:
                        status, body = fault.status, {"error": fault.body}
                    if method == "POST" and idempotency:
                        fake._idempotent[(key, idempotency)] = (params, status, body)
                    return self._json(status, body)
                except StripeFault as fault:
                    return self._json(fault.status, {"error": fault.body})

            def _page(self, method: str, path: str) -> None:
                pay = re.fullmatch(r"/pay/([A-Za-z0-9_]+)(?:/(card|oxxo))?", path)
                voucher = re.fullmatch(r"/voucher/([A-Za-z0-9_]+)", path)
                till = re.fullmatch(r"/voucher/([A-Za-z0-9_]+)/pay", path) if fake.demo else None
                if fake.demo and path == "/" and method == "GET":
                    page = fake._store_page()
                elif pay and pay[1] in fake.sessions and method == "GET" and not pay[2]:
                    page = fake._checkout_page(pay[1])
                elif voucher and voucher[1] in fake.payment_intents and method == "GET":
                    page = fake._voucher_page(voucher[1])
                elif till and till[1] in fake.payment_intents and method == "POST":
                    try:
                        page = fake._pay_at_store(till[1])
                    except ValueError as error:
                        page = f"<h1>{html.escape(str(error))}</h1>"
                        return self._send_body(409, page.encode(), "text/html; charset=utf-8")
                elif pay and pay[1] in fake.sessions and method == "POST" and pay[2]:
                    try:
                        (fake.pay_card if pay[2] == "card" else fake.issue_oxxo)(pay[1])
                    except ValueError as error:
                        page = f"<h1>{html.escape(str(error))}</h1>"
                        return self._send_body(409, page.encode(), "text/html; charset=utf-8")
                    if fake.demo and pay[2] == "oxxo":  # Checkout shows the voucher first
                        shown = f"/voucher/{fake.sessions[pay[1]]['payment_intent']}"
                        return self._send_body(303, b"", "text/html", Location=shown)
                    target = fake.sessions[pay[1]].get("success_url")
                    if target:
                        return self._send_body(303, b"", "text/html", Location=target)
                    page = "<h1>Thank you.</h1>"
                else:
                    return self._send_body(404, b"<h1>Not found</h1>", "text/html; charset=utf-8")
                document = f"<!doctype html><html><head><title>Stripe (test)</title></head><body>{page}</body></html>"
                return self._send_body(200, document.encode(), "text/html; charset=utf-8")

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self.base

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
