"""Stripe: a Checkout Session for cards (and OXXO cash vouchers in pesos), its webhook events,
the session's status and the day's settled PaymentIntents, for one lender's Stripe account.

Stripe's own client (``stripe``), one ``StripeClient`` per account: the module-wide
``stripe.api_key`` would let one lender's request run with another's key.

Webhooks are verified by the library's ``WebhookSignature.verify_header`` (``Stripe-Signature``:
``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, 300 s tolerance), the check
``Webhook.construct_event`` makes before it builds a typed object tree; that tree would only be
flattened back into the plain JSON read here, and costs some twenty times the check itself on
every callback. A timestamp more than the tolerance in the future is refused too, as the
product's own signed webhook does.

Which event says what (docs.stripe.com/api/events/types):

* ``checkout.session.completed``: paid (a card), or a voucher issued (OXXO: ``payment_status``
  "unpaid"; its number and expiry are on the PaymentIntent's ``next_action``, read through the
  API when the event carries only its id). ``payment_intent.requires_action`` carries the same
  voucher on the PaymentIntent itself.
* ``checkout.session.async_payment_succeeded`` and ``payment_intent.succeeded``: paid. A card
  payment sends both ``checkout.session.completed`` and ``payment_intent.succeeded``; each
  names the PaymentIntent as ``reference``, the payment's key, so the money applies once.
* ``checkout.session.async_payment_failed`` (the voucher lapsed unpaid) and
  ``checkout.session.expired``: the attempt ended with no money.
* Refunds: ``refund.created`` and ``refund.updated`` (a refund that settles later), each
  carrying one Refund with its own id and amount, applied once its status is "succeeded". Not
  ``charge.refunded``: since API version 2022-11-15 its Charge no longer lists its refunds,
  only the running ``amount_refunded``, so a second partial refund would have to be told from
  the first by subtraction (and events may arrive out of order); Stripe's documentation of
  that event points to ``refund.created`` for the refund itself.
* Chargebacks: ``charge.dispute.created``, and ``charge.dispute.funds_withdrawn`` for an
  inquiry that became a dispute (both keyed by the dispute's id). An inquiry
  (``warning_*`` status) takes no money and is ignored.
* Anything else: verified and ignored.

No secret reaches a message or a log: Stripe's errors come back by their code, with any key
in their text blanked.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import stripe
from django.conf import settings
from stripe.params import PaymentIntentListParams
from stripe.params.checkout import SessionCreateParams

from apps.core.money import Money, UnknownCurrency, minor_units, quantize
from apps.integrations.payments.base import (
    CallbackRefused,
    EventKind,
    PaymentAdapter,
    PaymentEvent,
    PaymentRequest,
    PaymentStatus,
    ProviderCallback,
    ProviderError,
    SettledPayment,
    StartedPayment,
    StartKind,
    StatusKind,
    Voucher,
)

PROVIDER = "stripe"
API_BASE = "https://api.stripe.com"
SIGNATURE_HEADER = "stripe-signature"
TOLERANCE = 300  # seconds, Stripe's own default
TIMEOUT = 15  # seconds per call: the customer is waiting on a page
# one retry (Stripe's client retries only what is safe: a lost connection, a 409, a 5xx it
# marks retryable, always with the same idempotency key); more would keep the page waiting
NETWORK_RETRIES = 1
OXXO_EXPIRES_AFTER_DAYS = 3

# Stripe's amounts are integers in the currency's smallest unit, which is ISO 4217's
# (apps.core.money) except where Stripe says otherwise (docs.stripe.com/currencies): ISK stays
# a two-decimal currency in its API, MGA is zero-decimal there.
_STRIPE_EXPONENTS = {"ISK": 2, "MGA": 0}
# ... and some are taken only in steps: ISK in whole krona, three-decimal currencies in tens
_STRIPE_STEPS = {"ISK": 100, "BHD": 10, "JOD": 10, "KWD": 10, "OMR": 10, "TND": 10}
_KEY = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_\S*|\bwhsec_\S*")


def stripe_exponent(currency: str) -> int:
    """How many decimals Stripe's integer amounts have in ``currency`` (UnknownCurrency)."""
    return _STRIPE_EXPONENTS.get(currency, minor_units(currency))


def money_to_stripe(amount: Money) -> int:
    """``amount`` as Stripe's integer, rounded up (never down: the loan is never short) to
    the smallest unit and step Stripe takes in its currency."""
    minor = int(
        (amount.amount.scaleb(stripe_exponent(amount.currency))).to_integral_value(
            rounding=ROUND_CEILING
        )
    )
    step = _STRIPE_STEPS.get(amount.currency, 1)
    return -(-minor // step) * step


def money_from_stripe(value: object, currency: object) -> Money:
    """Stripe's integer ``value`` in ``currency`` (lower-case, as Stripe writes it) as Money;
    UnknownCurrency for a currency the product does not know, ValueError for a non-integer."""
    if not isinstance(value, int) or isinstance(value, bool) or not isinstance(currency, str):
        raise ValueError("not a Stripe amount")
    code = currency.upper()
    return Money(quantize(Decimal(value).scaleb(-stripe_exponent(code)), code), code)


def _with_query(url: str, extra: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _at(timestamp: object) -> datetime:
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise ValueError("not a Stripe timestamp")
    return datetime.fromtimestamp(timestamp, UTC)


def _id(value: object) -> str:
    """The id of an expandable field: the id itself, or the expanded object's ``id``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return ""


def _provider_error(error: stripe.StripeError) -> ProviderError:
    if error.code:
        code = error.code
    elif isinstance(error, stripe.IdempotencyError):  # the key reused with other parameters
        code = "idempotency_error"
    else:
        code = str(error.http_status) if error.http_status else "unreachable"
    message = _KEY.sub("[redacted]", error.user_message or type(error).__name__)
    return ProviderError(code, message)


class StripeAdapter(PaymentAdapter):
    """One lender's Stripe account: its secret key for the API, its endpoint's signing secret
    for the webhook (``PROVIDER_FIELDS["stripe"]`` in apps.integrations.services)."""

    provider = PROVIDER

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        base_url: str | None = None,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        base = (base_url or settings.STRIPE_API_BASE or API_BASE).rstrip("/")
        self._webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": base},
            max_network_retries=NETWORK_RETRIES,
            http_client=http_client or stripe.RequestsClient(timeout=TIMEOUT),
        )

    def __repr__(self) -> str:  # never the keys
        return "StripeAdapter()"

    # --- start ------------------------------------------------------------------------

    def start(self, request: PaymentRequest) -> StartedPayment:
        """A Checkout Session for ``request.amount`` (cards; cards and OXXO in pesos), keyed
        by ``request.key`` both as Stripe's idempotency key (the same attempt asked twice
        gets the same session) and in the metadata of the session and of its PaymentIntent
        (so each event names the attempt and the loan)."""
        currency = request.amount.currency
        unit_amount = money_to_stripe(request.amount)
        if unit_amount < 1:
            raise ProviderError("amount", "Stripe takes at least one minor unit")
        metadata = {
            "attempt": request.key,
            "loan": request.loan_reference,
            "lender": request.lender_slug,
        }
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": unit_amount,
                        "product_data": {
                            "name": request.description or f"Loan {request.loan_reference}"
                        },
                    },
                }
            ],
            "allowed_payment_method_types": ["card"],
            "client_reference_id": request.loan_reference,
            # the page closes when the attempt is given up (Stripe takes 30 min to 24 h)
            "expires_at": int(time.time()) + 60 * max(31, settings.PAYMENTS_ATTEMPT_EXPIRE_MINUTES),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
        if currency == "MXN":  # OXXO takes pesos only
            params["allowed_payment_method_types"] = ["card", "oxxo"]
            params["payment_method_options"] = {
                "oxxo": {"expires_after_days": OXXO_EXPIRES_AFTER_DAYS}
            }
        if request.return_url:
            params["success_url"] = _with_query(request.return_url, "paid=1")
            params["cancel_url"] = request.return_url
        if request.email:
            params["customer_email"] = request.email
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.key}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from None
        return StartedPayment(
            attempt_ref=session.id,
            kind=StartKind.REDIRECT,
            redirect_url=session.url or "",
            amount=money_from_stripe(unit_amount, currency),
        )

    # --- callbacks --------------------------------------------------------------------

    def parse_callback(self, callback: ProviderCallback) -> list[PaymentEvent]:
        """The one event of a Stripe webhook delivery, verified against the endpoint's
        signing secret. ``CallbackRefused``: ``signature_invalid`` (no header, or a signature
        that does not match), ``timestamp_stale`` (signed more than 300 s away from now),
        ``malformed`` (not a Stripe event, or a currency the product does not know).
        ``ProviderError`` if a voucher's PaymentIntent cannot be read from Stripe (answer 5xx:
        Stripe delivers the event again)."""
        header = callback.headers.get(SIGNATURE_HEADER, "")
        try:
            body = callback.body.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRefused("malformed", "the body is not UTF-8") from None
        self._verify(body, header)
        try:
            event = json.loads(body)
            return [self._read(event)]
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            problem = "unknown currency" if isinstance(error, UnknownCurrency) else "not an event"
            raise CallbackRefused("malformed", f"not a Stripe event: {problem}") from None

    def _verify(self, body: str, header: str) -> None:
        try:
            stripe.WebhookSignature.verify_header(body, header, self._webhook_secret, TOLERANCE)
        except stripe.SignatureVerificationError:
            try:  # the signature itself, with no tolerance: genuine but stale, or not genuine
                stripe.WebhookSignature.verify_header(body, header, self._webhook_secret, None)
            except stripe.SignatureVerificationError:
                raise CallbackRefused("signature_invalid", "the signature does not match") from None
            raise CallbackRefused("timestamp_stale", "signed too long ago") from None
        # genuine: the header parses. Stripe's check stops at the past; a clock this far ahead
        # is as doubtful
        signed = min(int(i[2:]) for i in header.split(",") if i.startswith("t="))
        if signed > time.time() + TOLERANCE:
            raise CallbackRefused("timestamp_stale", "signed in the future")

    def _read(self, event: Any) -> PaymentEvent:
        if not isinstance(event, dict) or event.get("object") != "event":
            raise ValueError("not an event")
        event_id, event_type = event["id"], event["type"]
        if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
            raise ValueError("an event has an id and a type")
        obj = event["data"]["object"]
        if not isinstance(obj, dict):
            raise TypeError("an event's data is an object")
        ignored = PaymentEvent(
            provider=PROVIDER,
            event_id=event_id,
            event_type=event_type,
            kind=EventKind.IGNORED,
            received_at=_at(event["created"]),
            same_by_id=True,  # a redelivery may carry another pending_webhooks count
        )
        kind = obj.get("object")
        if event_type.startswith("checkout.session.") and kind == "checkout.session":
            return self._session_event(ignored, obj)
        if event_type in _INTENT_EVENTS and kind == "payment_intent":
            return _intent_event(ignored, obj)
        if event_type in _REFUND_EVENTS and kind == "refund":
            if obj.get("status") != "succeeded":  # pending, failed, canceled: no money back yet
                return replace(ignored, detail=f"refund {obj.get('status')}")
            return _reversal(ignored, obj, "refund")
        if event_type in _DISPUTE_EVENTS and kind == "dispute":
            if str(obj.get("status", "")).startswith("warning_"):  # an inquiry: no money moves
                return replace(ignored, detail="inquiry")
            return _reversal(ignored, obj, "chargeback")
        return ignored

    def _session_event(self, ignored: PaymentEvent, session: dict[str, Any]) -> PaymentEvent:
        metadata = session.get("metadata") or {}
        about = replace(
            ignored,
            attempt_ref=str(session["id"]),
            attempt_key=str(metadata.get("attempt", "")),
            loan_reference=str(session.get("client_reference_id") or ""),
            reference=_id(session.get("payment_intent")),
            amount=money_from_stripe(session.get("amount_total"), session.get("currency")),
        )
        paid = session.get("payment_status") == "paid"
        match ignored.event_type:
            case "checkout.session.async_payment_succeeded":
                return replace(about, kind=EventKind.PAID)
            case "checkout.session.completed" if paid:
                return replace(about, kind=EventKind.PAID)
            case "checkout.session.completed" if session.get("payment_status") == "unpaid":
                voucher = self._voucher(session.get("payment_intent"))
                return replace(about, kind=EventKind.PENDING, voucher=voucher)
            case "checkout.session.async_payment_failed" | "checkout.session.expired":
                return replace(about, kind=EventKind.FAILED)
        return ignored

    def _voucher(self, intent: object) -> Voucher | None:
        """The OXXO voucher of a session's PaymentIntent: from the event when it carries the
        PaymentIntent, else read from Stripe."""
        if isinstance(intent, dict):
            return _voucher_of(intent)
        if not isinstance(intent, str) or not intent:
            return None
        try:
            found = self._client.v1.payment_intents.retrieve(intent)
        except stripe.StripeError as error:
            raise _provider_error(error) from None
        return _voucher_of(found.to_dict())

    # --- status and settlement --------------------------------------------------------

    def status(self, *, attempt_ref: str) -> PaymentStatus:
        """Where the Checkout Session ``attempt_ref`` stands: paid (with its PaymentIntent),
        open (pending), expired, or completed with an OXXO voucher: pending while the
        voucher waits for the customer, failed once its PaymentIntent failed or was
        canceled. ``ProviderError`` (``resource_missing``) for a session Stripe does not have."""
        try:
            session = self._client.v1.checkout.sessions.retrieve(
                attempt_ref, params={"expand": ["payment_intent.latest_charge"]}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from None
        intent = session.payment_intent
        reference = intent if isinstance(intent, str) else (intent.id if intent else "")
        if session.status == "expired":
            return PaymentStatus(state=StatusKind.EXPIRED, detail="session expired")
        if session.status != "complete":
            return PaymentStatus(state=StatusKind.PENDING, detail="checkout open")
        amount = money_from_stripe(session.amount_total, session.currency)
        if session.payment_status == "paid":
            received = None
            if isinstance(intent, stripe.PaymentIntent):
                charge = intent.latest_charge
                received = _at(
                    charge.created if isinstance(charge, stripe.Charge) else intent.created
                )
            return PaymentStatus(
                state=StatusKind.PAID, reference=reference, amount=amount, received_at=received
            )
        if isinstance(intent, stripe.PaymentIntent) and intent.status in (
            "canceled",
            "requires_payment_method",  # the payment failed: the voucher lapsed unpaid
        ):
            return PaymentStatus(
                state=StatusKind.FAILED, reference=reference, detail=f"payment {intent.status}"
            )
        return PaymentStatus(
            state=StatusKind.PENDING, reference=reference, amount=amount, detail="voucher issued"
        )

    def settled(self, *, start: datetime, end: datetime) -> list[SettledPayment]:
        """The account's PaymentIntents created in [start, end) that succeeded, every page
        of them, received at their charge's time."""
        params: PaymentIntentListParams = {
            # Stripe's times are whole seconds: created >= start is created >= ceil(start)
            "created": {"gte": math.ceil(start.timestamp()), "lt": math.ceil(end.timestamp())},
            "limit": 100,
            "expand": ["data.latest_charge"],
        }
        settled = []
        try:
            for intent in self._client.v1.payment_intents.list(params=params).auto_paging_iter():
                if intent.status != "succeeded":
                    continue
                charge, metadata = intent.latest_charge, intent.metadata
                settled.append(
                    SettledPayment(
                        reference=intent.id,
                        amount=money_from_stripe(intent.amount_received, intent.currency),
                        received_at=_at(
                            charge.created if isinstance(charge, stripe.Charge) else intent.created
                        ),
                        loan_reference=intent.metadata["loan"] if "loan" in metadata else "",
                    )
                )
        except stripe.StripeError as error:
            raise _provider_error(error) from None
        return settled


_INTENT_EVENTS = ("payment_intent.succeeded", "payment_intent.requires_action")
_REFUND_EVENTS = ("refund.created", "refund.updated")
_DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.funds_withdrawn")


def _intent_event(ignored: PaymentEvent, intent: dict[str, Any]) -> PaymentEvent:
    metadata = intent.get("metadata") or {}
    about = replace(
        ignored,
        reference=str(intent["id"]),
        attempt_key=str(metadata.get("attempt", "")),
        loan_reference=str(metadata.get("loan", "")),
    )
    if ignored.event_type == "payment_intent.succeeded":
        amount = money_from_stripe(intent.get("amount_received"), intent.get("currency"))
        return replace(about, kind=EventKind.PAID, amount=amount)
    voucher = _voucher_of(intent)
    if voucher is None:  # another next action (3-D Secure): nothing to show or apply
        return ignored
    amount = money_from_stripe(intent.get("amount"), intent.get("currency"))
    return replace(about, kind=EventKind.PENDING, amount=amount, voucher=voucher)


def _reversal(ignored: PaymentEvent, obj: dict[str, Any], kind: str) -> PaymentEvent:
    """A refund or a dispute: its own id is the reversal's key, received at its own time."""
    reverses = _id(obj.get("payment_intent"))
    if not reverses:
        raise ValueError("a reversal names its PaymentIntent")
    return replace(
        ignored,
        kind=EventKind.REVERSED,
        received_at=_at(obj["created"]),
        reference=str(obj["id"]),
        reverses=reverses,
        reversal_kind=kind,
        amount=money_from_stripe(obj.get("amount"), obj.get("currency")),
    )


def _voucher_of(intent: Mapping[str, Any]) -> Voucher | None:
    """The OXXO voucher a PaymentIntent shows (``next_action.oxxo_display_details``)."""
    details = (intent.get("next_action") or {}).get("oxxo_display_details")
    if not isinstance(details, Mapping) or not details.get("number"):
        return None
    return Voucher(
        number=str(details["number"]),
        expires_at=_at(details.get("expires_after")),
        url=str(details.get("hosted_voucher_url") or ""),
    )
