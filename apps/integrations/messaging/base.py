"""The seam every messaging provider plugs into: send a text, read the provider's callbacks.

A provider module (``africastalking``, ``twilio_sms``, ``whatsapp``) implements
``MessagingAdapter`` for one lender's account. It speaks the provider's protocol and nothing
else: it knows no loan, no customer and no database row. What it hands back is in our terms
(``Sent``, ``DeliveryUpdate``, ``InboundText``), and ``apps.notifications`` applies it: the
delivery state of a message only moves forward, an opt-out stops what may be stopped, an
inbound text is answered or queued for an agent.

Neither a phone number nor a message's text ever reaches a log: an adapter's errors carry
the provider's code and the HTTP status only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"


class Delivery(StrEnum):
    """Where a message stands at its provider, in the only order it may move:
    queued < sent < delivered, or failed (from any of them). ``RANK`` orders them."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


RANK: Mapping[str, int] = {
    Delivery.QUEUED: 0,
    Delivery.SENT: 1,
    Delivery.DELIVERED: 2,
    Delivery.FAILED: 2,
}


class SendRefused(Exception):
    """The provider did not take the message: its own ``code`` (``invalid_number``,
    ``rate_limited``, ``unreachable``, ``auth_failed``, or the provider's code as it gives it)
    and whether trying again later may succeed (``retryable``: a rate limit, an outage)."""

    def __init__(self, code: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(f"{code} (HTTP {status})" if status else code)
        self.code, self.retryable, self.status = code, retryable, status


class CallbackRefused(Exception):
    """A callback not to apply: ``problem`` is a stable code (``signature_invalid``,
    ``token_invalid``, ``malformed``) for the answer and the audit trail."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TemplateCall:
    """An approved WhatsApp template: its name, language (``es_MX``) and body parameters."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to send: ``to`` in E.164, ``text`` as the customer reads it (an SMS, or a
    WhatsApp text inside the 24-hour window), ``template`` for a WhatsApp message outside
    it, and ``status_url`` where the provider reports delivery ("" where the account's
    dashboard sets it once, as Africa's Talking's does)."""

    to: str
    text: str
    template: TemplateCall | None = None
    status_url: str = ""
    language: str = ""  # the customer's (en, es, zh-hans): a template's language follows it


@dataclass(frozen=True, slots=True)
class Sent:
    """The provider took the message: its id for it, and where it stands now (most
    answer ``queued``; a provider that refuses one recipient of a batch answers ``failed``
    with its code in ``error``)."""

    provider_ref: str
    delivery: Delivery = Delivery.QUEUED
    error: str = ""
    cost: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A status callback read: the provider's id of the message and where it stands."""

    provider: str
    provider_ref: str
    delivery: Delivery
    error: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboundText:
    """A text a customer sent to the lender's number or WhatsApp account. ``opt_out`` when
    the provider itself reports it as an opt-out (Africa's Talking's opt-out callback,
    Twilio's ``OptOutType=STOP``), whatever the words."""

    provider: str
    channel: Channel
    sender: str
    text: str
    provider_ref: str
    to: str = ""
    opt_out: bool = False
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderCallback:
    """A callback as it arrived: the full URL it was sent to (Twilio signs it), the path
    token where the provider signs nothing, the method, headers, the raw body and the form
    or query fields."""

    url: str
    method: str
    headers: Mapping[str, str]
    body: bytes
    fields: Mapping[str, str] = field(default_factory=dict)
    path_token: str = ""


@dataclass(frozen=True, slots=True)
class CallbackRead:
    """What one callback says: delivery updates, inbound texts, or (the WhatsApp
    verify-token handshake) a ``challenge`` to echo back."""

    updates: tuple[DeliveryUpdate, ...] = ()
    inbound: tuple[InboundText, ...] = ()
    challenge: str = ""


class MessagingAdapter(Protocol):
    provider: str
    channel: Channel

    def send(self, message: Outbound) -> Sent:
        """Hand ``message`` to the provider, or ``SendRefused``."""
        ...

    def read_callback(self, callback: ProviderCallback) -> CallbackRead:
        """Verify the callback (signature, path token, handshake) and read it, or
        ``CallbackRefused``."""
        ...
