"""The payment provider's callbacks: a verified event applied exactly once, a refused one
recorded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from apps.audit.services import audit_event_record
from apps.collections.errors import ReceivedBeforeSigning
from apps.collections.events import CollectionsAction
from apps.collections.locks import loan_lock_by_reference
from apps.collections.models import Loan, Payment, PaymentReversal, WebhookEvent
from apps.collections.services.payments import payment_record_locked
from apps.collections.services.reversals import payment_reverse
from apps.collections.sql import WEBHOOK_EVENT_GET, WEBHOOK_EVENT_INSERT
from apps.core.actor import Actor
from apps.core.errors import IdempotencyConflict
from apps.core.money import Money
from apps.core.sql import insert_values, mark_saved, select_rows


def _body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def webhook_rejection_record(
    *, lender_id: int | None, provider: str, problem: str, actor: Actor, extra: dict[str, Any]
) -> None:
    """Record a refused provider callback (bad signature, stale, unknown loan...)."""
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action=CollectionsAction.WEBHOOK_REJECTED,
            lender_id=lender_id,
            data={"provider": provider, "problem": problem, **extra},
        )


@dataclass(frozen=True, slots=True)
class WebhookPayload:
    """The provider event's fields, checked for shape by the API layer."""

    event_id: str
    event_type: str  # payment.succeeded or payment.reversed
    loan_reference: str
    amount: Money
    reference: str
    received_at: datetime
    reverses: str = ""
    kind: str = PaymentReversal.Kind.CHARGEBACK


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: str  # applied or duplicate
    payment_id: int | None
    reversal_id: int | None


def webhook_event_get(*, lender_id: int, provider: str, event_id: str) -> WebhookEvent | None:
    found = select_rows(WebhookEvent, WEBHOOK_EVENT_GET, [lender_id, provider, event_id])
    return found[0] if found else None


def webhook_event_insert(event: WebhookEvent) -> None:
    """``save(force_insert=True)``; a second copy of the event raises IntegrityError.

    audit: none, the payment, reversal or attempt stored with it is on the record
    """
    with connection.cursor() as cursor:
        cursor.execute(WEBHOOK_EVENT_INSERT, insert_values(event))
        mark_saved(event, cursor.fetchone()[0])


def _received_after_signing(*, loan: Loan, received_at: datetime) -> None:
    """Refuse a provider's money dated before ``loan`` was signed: it names the wrong loan
    or the wrong date, and replayed in ``received_at`` order it would pay installments
    before they existed. tests/collections/test_api_webhook.py."""
    if loan.signed_at is None or received_at >= loan.signed_at:
        return
    dates = {"received_at": received_at.isoformat(), "signed_at": loan.signed_at.isoformat()}
    message = _(
        "The money is dated %(received_at)s, before loan %(loan)s was signed (%(signed_at)s)."
    )
    raise ReceivedBeforeSigning(message % {**dates, "loan": loan.reference}, **dates)


def payment_webhook_apply(
    *, lender_id: int, provider: str, payload: WebhookPayload, body: bytes, actor: Actor
) -> WebhookOutcome:
    """Apply a verified provider event exactly once and store its raw body.

    The outermost transaction (durable): the payment or reversal, its
    allocation and the stored event commit together. Five deliveries of one
    event at the same moment queue on the loan's row lock; the first applies
    it, the others find the payment by its reference and then lose the race for
    the event's unique slot, and answer "duplicate". The same event id with a
    different body raises IdempotencyConflict. An unknown loan raises
    LoanNotFound, and money dated before the loan was signed
    ReceivedBeforeSigning; either stores nothing.
    """
    digest = _body_sha256(body)
    existing = webhook_event_get(lender_id=lender_id, provider=provider, event_id=payload.event_id)
    if existing is not None:
        return webhook_duplicate_or_conflict(existing, digest)
    try:
        with transaction.atomic(durable=True):
            payment, reversal = None, None
            # the loan found and locked in one query (payment_reverse's own lock then
            # finds it held): the first lock either path takes
            loan = loan_lock_by_reference(lender_id=lender_id, reference=payload.loan_reference)
            _received_after_signing(loan=loan, received_at=payload.received_at)
            if payload.event_type == "payment.reversed":
                reversal = payment_reverse(
                    loan_id=loan.pk,
                    lender_id=lender_id,
                    kind=payload.kind,
                    amount=payload.amount,
                    provider=provider,
                    provider_ref=payload.reference,
                    payment_provider_ref=payload.reverses,
                    received_at=payload.received_at,
                    actor=actor,
                ).reversal
            else:
                # payment_record's contract, with no savepoint: this transaction is the
                # whole unit.
                payment = payment_record_locked(
                    loan=loan,
                    amount=payload.amount,
                    channel=Payment.Channel.PROVIDER,
                    provider=provider,
                    provider_ref=payload.reference,
                    received_at=payload.received_at,
                    actor=actor,
                ).payment
            webhook_event_insert(
                WebhookEvent(
                    lender_id=lender_id,
                    provider=provider,
                    event_id=payload.event_id,
                    event_type=payload.event_type,
                    body=body.decode("utf-8"),
                    body_sha256=digest,
                    payment=payment,
                    reversal=reversal,
                )
            )
    except IntegrityError:
        existing = webhook_event_get(
            lender_id=lender_id, provider=provider, event_id=payload.event_id
        )
        if existing is None:
            raise
        return webhook_duplicate_or_conflict(existing, digest)
    return WebhookOutcome(
        status="applied",
        payment_id=payment.pk if payment else None,
        reversal_id=reversal.pk if reversal else None,
    )


def webhook_duplicate_or_conflict(event: WebhookEvent, digest: str) -> WebhookOutcome:
    if event.body_sha256 != digest:
        raise IdempotencyConflict(event_id=event.event_id)
    return WebhookOutcome(
        status="duplicate", payment_id=event.payment_id, reversal_id=event.reversal_id
    )
