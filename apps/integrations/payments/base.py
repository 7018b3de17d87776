"""The seam every payment provider plugs into: start a payment, read its callback, ask
where it stands.

A provider module (``mpesa``, ``stripe``, ``generic``) implements ``PaymentAdapter`` for
one lender's account. It speaks the provider's protocol and nothing else: it knows no
loan, no stage and no database row. What it hands back is in our terms
(``StartedPayment``, ``PaymentEvent``, ``PaymentStatus``), and ``apps.collections`` applies
it exactly once under the loan's lock. ``adapter_for`` (``apps.integrations.payments.registry``)
builds the adapter from the lender's provider account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from apps.core.money import Money


class ProviderError(Exception):
    """The provider refused a call or could not be reached: its own code (or the HTTP
    status) and message, never a secret nor the customer's number."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code, self.message = code, message


class CallbackRefused(Exception):
    """A callback not to apply: ``problem`` is a stable code for the audit trail
    (``signature_invalid``, ``timestamp_stale``, ``malformed``, ...). ``verified`` when the
    caller was shown to be the provider and only what it says is refused (a payment to
    another paybill)."""

    def __init__(self, problem: str, message: str = "", *, verified: bool = False) -> None:
        super().__init__(message or problem)
        self.problem, self.verified = problem, verified


class StartKind(StrEnum):
    PUSH = "push"  # a prompt on the customer's phone (M-Pesa STK)
    REDIRECT = "redirect"  # a hosted checkout page (Stripe Checkout, the demo checkout)


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What to ask the customer for: ``amount`` on the loan ``loan_reference``.

    ``key`` is ours (the attempt's id), sent to the provider where it takes one (metadata,
    an idempotency key) so a callback can name the attempt. ``phone`` (E.164) is for a push;
    ``return_url`` for a checkout page.
    """

    key: str
    lender_slug: str
    loan_reference: str
    amount: Money
    description: str
    callback_url: str = ""
    return_url: str = ""
    phone: str = ""
    email: str = ""
    customer_name: str = ""


@dataclass(frozen=True, slots=True)
class StartedPayment:
    """The provider took the request: its id for the attempt (``attempt_ref``: an STK
    CheckoutRequestID, a Checkout Session id), where to send the customer, if anywhere,
    and the amount actually asked for (M-Pesa asks whole shillings)."""

    attempt_ref: str
    kind: StartKind
    amount: Money
    redirect_url: str = ""
    message: str = ""


class EventKind(StrEnum):
    PAID = "paid"  # money received
    PENDING = "pending"  # accepted, money later (an OXXO voucher issued)
    FAILED = "failed"  # the attempt ended with no money (cancelled, timed out, declined)
    REVERSED = "reversed"  # a refund or a chargeback of a payment
    IGNORED = "ignored"  # a verified event that carries nothing for us


@dataclass(frozen=True, slots=True)
class Voucher:
    """A cash voucher the customer pays at a shop (OXXO): its number, when it expires and
    the provider's page to print or show it."""

    number: str
    expires_at: datetime
    url: str = ""


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A verified provider callback in our terms.

    ``event_id`` keys the delivery (a Stripe event id, an M-Pesa receipt or STK request id,
    a generic event id): the same delivery twice applies once. ``reference`` is the
    provider's own reference for the money (the M-Pesa receipt number the customer has in
    their SMS, a Stripe PaymentIntent id): the payment's key. ``attempt_ref`` (the
    provider's id) or ``attempt_key`` (ours, from the request's metadata) names the attempt
    we started, where the provider says; ``loan_reference`` the loan, where the
    customer typed it (an M-Pesa paybill account number). ``reverses`` and
    ``reversal_kind`` (refund or chargeback) for a reversal. ``expires_at`` on a checkout
    request: when the provider's page stops taking the payment.
    """

    provider: str
    event_id: str
    event_type: str
    kind: EventKind
    received_at: datetime
    amount: Money | None = None
    reference: str = ""
    attempt_ref: str = ""
    attempt_key: str = ""
    loan_reference: str = ""
    receipt: str = ""
    reverses: str = ""
    reversal_kind: str = "chargeback"
    voucher: Voucher | None = None
    detail: str = ""
    account: str = ""  # the provider's account the money went to (a shortcode)
    # the money reached the lender's own account whatever we make of the callback (a
    # paybill): one we refuse is kept for the back office, never dropped
    kept_if_refused: bool = False
    # the provider signs each delivery and may resend an event with a changed envelope
    # (Stripe's pending_webhooks): the event id alone says it is the same event
    same_by_id: bool = False


class StatusKind(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    """Where an attempt stands at the provider (reconciliation, a doubtful callback)."""

    state: StatusKind
    reference: str = ""
    amount: Money | None = None
    received_at: datetime | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SettledPayment:
    """One payment the provider lists as settled (the daily reconciliation report)."""

    reference: str
    amount: Money
    received_at: datetime
    loan_reference: str = ""


@dataclass(frozen=True, slots=True)
class ProviderCallback:
    """A callback as it arrived: the raw body (signatures cover its bytes), its headers
    (lower-case names), the address it came from, and for a provider that signs nothing
    (Daraja) the secret token of the path it was sent to and which of its callbacks this
    is (``route``)."""

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str = ""
    path_token: str = ""
    route: str = ""


class PaymentAdapter(Protocol):
    """One lender's account with one provider."""

    provider: str

    def start(self, request: PaymentRequest) -> StartedPayment:
        """Ask the provider for a payment; ``ProviderError`` if it refuses."""
        ...

    def parse_callback(self, callback: ProviderCallback) -> list[PaymentEvent]:
        """Verify the callback and read it; ``CallbackRefused`` if it is not genuine or not
        readable. Most callbacks carry one event; none for one we have no use for."""
        ...

    def status(self, *, attempt_ref: str) -> PaymentStatus:
        """Where the attempt ``attempt_ref`` stands; ``ProviderError`` if unknown there."""
        ...

    def settled(self, *, start: datetime, end: datetime) -> list[SettledPayment] | None:
        """The payments settled in [start, end), or None where the provider lists none."""
        ...
