"""Money through a payment provider: a payment started here (an M-Pesa prompt, a Stripe
checkout), the provider's callbacks applied exactly once, and the attempts nobody called
back about asked after.

The provider's reference stays the payment's key (``Payment`` is unique per lender,
provider and reference), and an attempt moves once under the loan's lock then its own:
a callback and the reconciliation query racing for one attempt apply it once.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_event_record
from apps.collections.errors import (
    AttemptAmountMismatch,
    LoanNotFound,
    NothingToPay,
    PaymentAlreadyStarted,
    PaymentNotConfirmed,
    PaymentStartFailed,
    ReceiptSeenBefore,
    UnknownAttempt,
    UnknownPayment,
)
from apps.collections.events import CollectionsAction
from apps.collections.locks import loan_lock, loan_lock_by_reference, loan_lock_with_row
from apps.collections.models import Loan, Payment, PaymentAttempt, PaymentReversal, WebhookEvent
from apps.collections.selectors import loan_overview
from apps.collections.services.payments import payment_record_locked
from apps.collections.services.reversals import payment_reverse
from apps.collections.services.webhooks import (
    WebhookOutcome,
    webhook_duplicate_or_conflict,
    webhook_event_get,
    webhook_event_insert,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.integrations.payments.base import (
    EventKind,
    PaymentEvent,
    PaymentRequest,
    PaymentStatus,
    ProviderError,
    StatusKind,
)
from apps.integrations.payments.registry import adapter_for, callback_url
from apps.lenders.models import Lender

logger = logging.getLogger(__name__)

# a second prompt to the same loan this soon is refused: the first is still on the phone
PUSH_AGAIN_AFTER = timedelta(minutes=2)
# attempts asked about per reconciliation run (one provider call each)
RECONCILE_BATCH = 200


# --- starting a payment ---------------------------------------------------------------


def payment_attempt_start(
    *,
    loan_id: int,
    lender_id: int,
    provider: str,
    actor: Actor,
    phone: str = "",
    email: str = "",
    return_url: str = "",
) -> PaymentAttempt:
    """Ask ``provider`` for what the loan owes now (``LoanOverview.pay_amount``): a prompt
    on ``phone`` (M-Pesa) or a checkout page to send the customer to (Stripe).

    The attempt is stored before the provider is called and completed after, each in a
    transaction of its own, with no lock held across the call: a provider that answers
    late holds up nobody. Raises NothingToPay, PaymentAlreadyStarted (a prompt less than
    two minutes old is still on the phone), ProviderNotConfigured, and PaymentStartFailed
    when the provider refuses (the attempt is kept as failed, with the provider's code).
    """
    lender = Lender.objects.get(pk=lender_id)
    adapter = adapter_for(lender_id=lender_id, lender_slug=lender.slug, provider=provider)
    with transaction.atomic():
        loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
        amount = loan_overview(loan=loan).pay_amount
        if loan.status != Loan.Status.ACTIVE or amount.amount <= 0:
            raise NothingToPay(loan=loan.reference)
        recent = PaymentAttempt.objects.filter(
            loan=loan,
            provider=provider,
            status__in=(PaymentAttempt.Status.STARTING, PaymentAttempt.Status.STARTED),
            created_at__gt=timezone.now() - PUSH_AGAIN_AFTER,
        )
        if phone and recent.exists():
            raise PaymentAlreadyStarted(loan=loan.reference)
        attempt = PaymentAttempt.objects.create(
            lender_id=lender_id,
            loan=loan,
            provider=provider,
            amount=amount.amount,
            currency=amount.currency,
            started_by=actor.type,
        )
    request = PaymentRequest(
        key=str(attempt.key),
        lender_slug=lender.slug,
        loan_reference=loan.reference,
        amount=amount,
        description=_("Loan %(loan)s") % {"loan": loan.reference},
        callback_url=callback_url(provider=provider, lender_slug=lender.slug, route="stk"),
        return_url=return_url,
        phone=phone,
        email=email,
    )
    try:
        started = adapter.start(request)
    except ProviderError as exc:
        _attempt_close(attempt, PaymentAttempt.Status.FAILED, detail=exc.code, actor=actor)
        raise PaymentStartFailed(provider=provider, provider_code=exc.code) from exc
    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        attempt.attempt_ref = started.attempt_ref
        attempt.amount = started.amount.amount
        attempt.redirect_url = started.redirect_url
        if attempt.status == PaymentAttempt.Status.STARTING:
            attempt.status = PaymentAttempt.Status.STARTED
        attempt.save()
        audit_event_record(
            actor=actor,
            action=CollectionsAction.PAYMENT_ATTEMPT_STARTED,
            target=attempt.loan,
            lender_id=lender_id,
            data={
                "attempt": str(attempt.key),
                "provider": provider,
                "provider_id": attempt.attempt_ref,
                "amount": str(started.amount.amount),
                "currency": started.amount.currency,
                "kind": started.kind,
            },
        )
    return attempt


def _attempt_close(attempt: PaymentAttempt, status: str, *, detail: str, actor: Actor) -> None:
    with transaction.atomic():
        PaymentAttempt.objects.filter(pk=attempt.pk, status__in=PaymentAttempt.OPEN).update(
            status=status, detail=detail[:200], settled_at=timezone.now()
        )
        audit_event_record(
            actor=actor,
            action=CollectionsAction.PAYMENT_ATTEMPT_SETTLED,
            target=attempt.loan,
            lender_id=attempt.lender_id,
            data={"attempt": str(attempt.key), "status": status, "detail": detail[:200]},
        )


# --- a provider's callback ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderEventOutcome:
    status: str  # applied, duplicate, recorded (nothing to apply), unmatched
    payment_id: int | None = None
    reversal_id: int | None = None
    attempt_id: int | None = None


def _attempt_named(*, lender_id: int, event: PaymentEvent) -> PaymentAttempt | None:
    found = PaymentAttempt.objects.filter(lender_id=lender_id, provider=event.provider)
    if event.attempt_ref:
        return found.filter(attempt_ref=event.attempt_ref).first()
    if event.attempt_key:
        try:
            return found.filter(key=event.attempt_key).first()
        except ValueError:  # Django's UUIDField: not a UUID
            return None
    return None


def provider_event_apply(
    *, lender_id: int, event: PaymentEvent, body: bytes, actor: Actor
) -> ProviderEventOutcome:
    """Apply a verified provider event exactly once and keep its raw body.

    A payment that answers an attempt we started is checked against it: the attempt must
    exist (UnknownAttempt), the amount be the one asked (AttemptAmountMismatch), and an
    attempt already given up (failed or expired) is paid only once the provider's status
    query confirms it (PaymentNotConfirmed). A receipt that already paid another attempt
    is refused (ReceiptSeenBefore). A paybill payment names its loan by the account number
    the customer typed; one naming no loan of the lender is kept, unapplied, for the
    back office (``unmatched``). A reversal names the payment it reverses (UnknownPayment
    while we have not received it: the provider delivers it again). The same delivery
    twice answers ``duplicate``; the same event id with another body IdempotencyConflict.
    """
    digest = hashlib.sha256(body).hexdigest()
    if event.kind == EventKind.IGNORED:
        return ProviderEventOutcome(status="recorded")
    existing = webhook_event_get(
        lender_id=lender_id, provider=event.provider, event_id=event.event_id
    )
    if existing is not None:
        return _outcome(webhook_duplicate_or_conflict(existing, digest))
    attempt = _attempt_named(lender_id=lender_id, event=event)
    if (event.attempt_ref or event.attempt_key) and attempt is None:
        raise UnknownAttempt(provider_id=event.attempt_ref or event.attempt_key)
    if attempt is not None and event.kind == EventKind.PAID:
        _payment_matches_attempt(attempt=attempt, event=event)
    try:
        with transaction.atomic(durable=True):
            outcome = _event_apply_locked(
                lender_id=lender_id, event=event, attempt=attempt, actor=actor
            )
            webhook_event_insert(
                WebhookEvent(
                    lender_id=lender_id,
                    provider=event.provider,
                    event_id=event.event_id,
                    event_type=event.event_type[:40],
                    body=body.decode("utf-8"),
                    body_sha256=digest,
                    payment_id=outcome.payment_id,
                    reversal_id=outcome.reversal_id,
                )
            )
    except IntegrityError:
        existing = webhook_event_get(
            lender_id=lender_id, provider=event.provider, event_id=event.event_id
        )
        if existing is None:
            raise
        return _outcome(webhook_duplicate_or_conflict(existing, digest))
    return outcome


def _outcome(found: WebhookOutcome) -> ProviderEventOutcome:
    return ProviderEventOutcome(
        status=found.status, payment_id=found.payment_id, reversal_id=found.reversal_id
    )


def _payment_matches_attempt(*, attempt: PaymentAttempt, event: PaymentEvent) -> None:
    asked = Money(attempt.amount, attempt.currency)
    if event.amount is None or event.amount != asked:
        raise AttemptAmountMismatch(
            asked=str(asked.amount),
            paid=str(event.amount.amount) if event.amount else "",
            currency=attempt.currency,
        )
    if attempt.status in (PaymentAttempt.Status.FAILED, PaymentAttempt.Status.EXPIRED):
        # we had given it up: a late callback is applied only if the provider confirms it
        status = _provider_status(attempt)
        if status is None or status.state != StatusKind.PAID:
            raise PaymentNotConfirmed(
                provider_id=attempt.attempt_ref, state=status.state if status else "unknown"
            )


def _provider_status(attempt: PaymentAttempt) -> PaymentStatus | None:
    lender = Lender.objects.get(pk=attempt.lender_id)
    try:
        adapter = adapter_for(
            lender_id=attempt.lender_id, lender_slug=lender.slug, provider=attempt.provider
        )
        return adapter.status(attempt_ref=attempt.attempt_ref)
    except ProviderError as exc:
        logger.warning("payment status query failed: %s %s", attempt.provider, exc.code)
        return None


def _event_apply_locked(
    *, lender_id: int, event: PaymentEvent, attempt: PaymentAttempt | None, actor: Actor
) -> ProviderEventOutcome:
    if event.kind == EventKind.REVERSED:
        return _reversal_apply(lender_id=lender_id, event=event, actor=actor)
    if attempt is not None:
        locked = loan_lock_with_row(PaymentAttempt, pk=attempt.pk, lender_id=lender_id)
        if locked is None:  # pragma: no cover - attempts are never deleted
            raise UnknownAttempt(provider_id=event.attempt_ref)
        loan, attempt = locked
    elif event.kind == EventKind.PAID:
        try:
            loan = loan_lock_by_reference(
                lender_id=lender_id, reference=Loan.reference_as_typed(event.loan_reference)
            )
        except LoanNotFound:
            return _unmatched(lender_id=lender_id, event=event, actor=actor)
    else:
        return ProviderEventOutcome(status="recorded")
    if event.kind == EventKind.PAID:
        return _payment_apply(loan=loan, attempt=attempt, event=event, actor=actor)
    assert attempt is not None  # noqa: S101 - a pending or failed event always names one
    if event.kind == EventKind.PENDING and attempt.status == PaymentAttempt.Status.STARTED:
        attempt.status = PaymentAttempt.Status.PENDING
        if event.voucher is not None:
            attempt.voucher_number = event.voucher.number[:60]
            attempt.voucher_expires_at = event.voucher.expires_at
            attempt.voucher_url = event.voucher.url
        attempt.save()
    elif event.kind == EventKind.FAILED and attempt.status in PaymentAttempt.OPEN:
        _attempt_settle_locked(
            attempt, PaymentAttempt.Status.FAILED, detail=event.detail, actor=actor, by="callback"
        )
    return ProviderEventOutcome(status="recorded", attempt_id=attempt.pk)


def _payment_apply(
    *, loan: Loan, attempt: PaymentAttempt | None, event: PaymentEvent, actor: Actor
) -> ProviderEventOutcome:
    if attempt is not None and attempt.payment_id is not None:
        # paid already (the other callback of the same payment, or the status query)
        if event.receipt and not attempt.receipt:
            attempt.receipt = event.receipt[:100]
            attempt.save(update_fields=["receipt", "updated_at"])
        return ProviderEventOutcome(
            status="duplicate", payment_id=attempt.payment_id, attempt_id=attempt.pk
        )
    if event.amount is None:
        raise AttemptAmountMismatch(asked="", paid="", currency=loan.currency)
    outcome = payment_record_locked(
        loan=loan,
        amount=event.amount,
        channel=Payment.Channel.PROVIDER,
        provider=event.provider,
        provider_ref=event.reference or event.attempt_ref,
        received_at=event.received_at,
        actor=actor,
        receipt_ref=event.receipt,
    )
    if attempt is not None:
        if not outcome.created:
            raise ReceiptSeenBefore(reference=event.reference)
        attempt.payment = outcome.payment
        attempt.receipt = event.receipt[:100]
        _attempt_settle_locked(
            attempt, PaymentAttempt.Status.PAID, detail="", actor=actor, by="callback"
        )
    return ProviderEventOutcome(
        status="applied" if outcome.created else "duplicate",
        payment_id=outcome.payment.pk,
        attempt_id=attempt.pk if attempt else None,
    )


def _attempt_settle_locked(
    attempt: PaymentAttempt, status: str, *, detail: str, actor: Actor, by: str
) -> None:
    attempt.status = status
    attempt.detail = detail[:200]
    attempt.settled_at = timezone.now()
    attempt.save()
    audit_event_record(
        actor=actor,
        action=CollectionsAction.PAYMENT_ATTEMPT_SETTLED,
        target=attempt.loan,
        lender_id=attempt.lender_id,
        data={
            "attempt": str(attempt.key),
            "provider": attempt.provider,
            "status": status,
            "by": by,
            "detail": detail[:200],
            "payment": attempt.payment_id,
        },
    )


def _unmatched(*, lender_id: int, event: PaymentEvent, actor: Actor) -> ProviderEventOutcome:
    """Money the provider took for an account number that names no loan of the lender:
    kept (its callback stored) and on the record for the back office to place."""
    assert event.amount is not None  # noqa: S101 - a payment event carries its amount
    audit_event_record(
        actor=actor,
        action=CollectionsAction.PAYMENT_UNMATCHED,
        lender_id=lender_id,
        data={
            "provider": event.provider,
            "reference": event.reference,
            "account": event.loan_reference[:40],
            "amount": str(event.amount.amount),
            "currency": event.amount.currency,
        },
    )
    return ProviderEventOutcome(status="unmatched")


def _reversal_apply(*, lender_id: int, event: PaymentEvent, actor: Actor) -> ProviderEventOutcome:
    paid = Payment.objects.filter(
        lender_id=lender_id, provider=event.provider, provider_ref=event.reverses
    ).first()
    if paid is None or event.amount is None:
        raise UnknownPayment(reverses=event.reverses)
    reversal = payment_reverse(
        loan_id=paid.loan_id,
        lender_id=lender_id,
        kind=event.reversal_kind or PaymentReversal.Kind.CHARGEBACK,
        amount=event.amount,
        provider=event.provider,
        provider_ref=event.reference,
        payment_provider_ref=event.reverses,
        received_at=event.received_at,
        actor=actor,
    ).reversal
    return ProviderEventOutcome(status="applied", reversal_id=reversal.pk)


# --- reconciliation: attempts nobody called back about -------------------------------


def payment_attempts_due(*, now: datetime | None = None) -> list[int]:
    """The open attempts to ask the provider about: started more than
    PAYMENTS_ATTEMPT_QUERY_AFTER_MINUTES ago and not asked about since then."""
    now = now or timezone.now()
    quiet = now - timedelta(minutes=settings.PAYMENTS_ATTEMPT_QUERY_AFTER_MINUTES)
    return list(
        PaymentAttempt.objects.filter(status__in=PaymentAttempt.OPEN, created_at__lt=quiet)
        .exclude(checked_at__gte=quiet)
        .order_by("created_at")
        .values_list("pk", flat=True)[:RECONCILE_BATCH]
    )


def payment_attempt_reconcile(*, attempt_id: int, actor: Actor, now: datetime | None = None) -> str:
    """Ask the provider where one open attempt stands and settle it: paid (applied, the
    provider's reference as the key), failed, expired (no answer after
    PAYMENTS_ATTEMPT_EXPIRE_MINUTES, or a voucher past its expiry), or still waiting.
    The provider is asked with no lock held; the answer is applied under the loan's lock
    then the attempt's, so a callback that came meanwhile wins and nothing applies twice.
    Returns the attempt's status after."""
    now = now or timezone.now()
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    if attempt.status not in PaymentAttempt.OPEN:
        return attempt.status
    status = _provider_status(attempt) if attempt.attempt_ref else None
    with transaction.atomic():
        locked = loan_lock_with_row(PaymentAttempt, pk=attempt.pk, lender_id=attempt.lender_id)
        assert locked is not None  # noqa: S101 - attempts are never deleted
        loan, attempt = locked
        if attempt.status not in PaymentAttempt.OPEN:
            return attempt.status
        if status is not None and status.state == StatusKind.PAID:
            amount = status.amount or Money(attempt.amount, attempt.currency)
            outcome = payment_record_locked(
                loan=loan,
                amount=amount,
                channel=Payment.Channel.PROVIDER,
                provider=attempt.provider,
                provider_ref=status.reference or attempt.attempt_ref,
                received_at=min(status.received_at or now, now),
                actor=actor,
            )
            attempt.payment = outcome.payment
            _attempt_settle_locked(
                attempt, PaymentAttempt.Status.PAID, detail="", actor=actor, by="query"
            )
        elif status is not None and status.state in (StatusKind.FAILED, StatusKind.EXPIRED):
            _attempt_settle_locked(
                attempt, status.state, detail=status.detail, actor=actor, by="query"
            )
        elif _attempt_expired(attempt, now):
            _attempt_settle_locked(
                attempt,
                PaymentAttempt.Status.EXPIRED,
                detail=status.detail if status else "no answer from the provider",
                actor=actor,
                by="query",
            )
        else:
            attempt.checked_at = now
            attempt.save(update_fields=["checked_at", "updated_at"])
        return attempt.status


def payment_attempts_reconcile(*, actor: Actor, now: datetime | None = None) -> int:
    """Ask about every attempt due (``payment_attempts_due``), one provider call each, a
    batch at a time; a provider that fails leaves its attempt for the next run. Returns
    how many were asked about."""
    due = payment_attempts_due(now=now)
    for attempt_id in due:
        payment_attempt_reconcile(attempt_id=attempt_id, actor=actor, now=now)
    return len(due)


def _attempt_expired(attempt: PaymentAttempt, now: datetime) -> bool:
    if attempt.voucher_expires_at is not None:
        return now > attempt.voucher_expires_at + timedelta(days=1)  # the shop's day closes
    return now > attempt.created_at + timedelta(minutes=settings.PAYMENTS_ATTEMPT_EXPIRE_MINUTES)
