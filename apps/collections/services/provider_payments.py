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
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
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
    PaymentStartUncertain,
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
from apps.collections.sql import (
    ATTEMPT_BY_KEY,
    ATTEMPT_BY_REF,
    ATTEMPT_PAID_BY_QUERY,
    ATTEMPT_SETTLE,
)
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.core.money import Money
from apps.core.sql import select_rows
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
        if exc.code == "unreachable":  # it may have reached the phone all the same
            raise PaymentStartUncertain(provider=provider) from exc
        raise PaymentStartFailed(provider=provider, provider_code=exc.code) from exc
    with transaction.atomic():
        attempt = _attempt_lock(attempt)[1]
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
        changed = PaymentAttempt.objects.filter(
            pk=attempt.pk, status__in=PaymentAttempt.OPEN
        ).update(status=status, detail=detail[:200], settled_at=timezone.now())
        if not changed:
            return
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
    """The attempt of ours the event names, by the provider's id or by our key (in SQL
    written once: ``ATTEMPT_BY_REF``, ``ATTEMPT_BY_KEY``; read on every callback)."""
    if event.attempt_ref:
        statement, params = ATTEMPT_BY_REF, [lender_id, event.provider, event.attempt_ref]
    elif event.attempt_key:
        try:
            key = uuid.UUID(event.attempt_key)
        except ValueError:  # not a UUID: no attempt of ours
            return None
        statement, params = ATTEMPT_BY_KEY, [key, lender_id, event.provider]
    else:
        return None
    found = select_rows(PaymentAttempt, statement, params)
    return found[0] if found else None


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
    if event.kind == EventKind.IGNORED:
        return ProviderEventOutcome(status="recorded")
    existing = webhook_event_get(
        lender_id=lender_id, provider=event.provider, event_id=event.event_id
    )
    if existing is not None:
        return _seen(existing, body, event)
    try:
        attempt = _attempt_named(lender_id=lender_id, event=event)
        if (event.attempt_ref or event.attempt_key) and attempt is None:
            raise UnknownAttempt(provider_id=event.attempt_ref or event.attempt_key)
        if attempt is not None and event.kind == EventKind.PAID:
            _payment_matches_attempt(attempt=attempt, event=event)
        return _event_apply(
            lender_id=lender_id, event=event, attempt=attempt, body=body, actor=actor
        )
    except DomainError as refused:  # a refusal of ours, or a loan that takes no payment now
        if event.kind == EventKind.PAID and event.kept_if_refused:
            _money_kept(lender_id=lender_id, event=event, body=body, actor=actor, why=refused.code)
        raise


def _event_apply(
    *,
    lender_id: int,
    event: PaymentEvent,
    attempt: PaymentAttempt | None,
    body: bytes,
    actor: Actor,
) -> ProviderEventOutcome:
    try:
        with transaction.atomic(durable=True):
            outcome = _event_apply_locked(
                lender_id=lender_id, event=event, attempt=attempt, actor=actor
            )
            webhook_event_insert(_stored(lender_id, event, body, outcome))
    except IntegrityError:
        existing = webhook_event_get(
            lender_id=lender_id, provider=event.provider, event_id=event.event_id
        )
        if existing is None:
            raise
        return _seen(existing, body, event)
    return outcome


def _seen(existing: WebhookEvent, body: bytes, event: PaymentEvent) -> ProviderEventOutcome:
    """The same delivery again: a duplicate, or IdempotencyConflict for another body under
    the same id (unless the provider's id alone is the key)."""
    digest = existing.body_sha256 if event.same_by_id else hashlib.sha256(body).hexdigest()
    return _outcome(webhook_duplicate_or_conflict(existing, digest))


def _money_kept(
    *, lender_id: int, event: PaymentEvent, body: bytes, actor: Actor, why: str
) -> None:
    """Money that reached the lender's own account but that we will not apply (a callback
    for a push we cannot place, an amount we did not ask for...): the provider is told it
    arrived, so its callback is kept and the back office sees it among the unmatched, as a
    paybill payment naming no loan is."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                webhook_event_insert(_stored(lender_id, event, body, None))
        except IntegrityError:
            return  # kept already, by this delivery's twin or an earlier one
        _unmatched(lender_id=lender_id, event=event, actor=actor, why=why)


def _stored(
    lender_id: int, event: PaymentEvent, body: bytes, outcome: ProviderEventOutcome | None
) -> WebhookEvent:
    """The callback as kept: its raw body, and the payment or reversal it became."""
    return WebhookEvent(
        lender_id=lender_id,
        provider=event.provider,
        event_id=event.event_id,
        event_type=event.event_type[:40],
        body=body.decode("utf-8"),
        body_sha256=hashlib.sha256(body).hexdigest(),
        payment_id=outcome.payment_id if outcome else None,
        reversal_id=outcome.reversal_id if outcome else None,
    )


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
            lender_id=attempt.lender_id,
            lender_slug=lender.slug,
            provider=attempt.provider,
            in_use_only=False,
        )
        return adapter.status(attempt_ref=attempt.attempt_ref)
    except ProviderError as exc:
        logger.warning("payment status query failed: %s %s", attempt.provider, exc.code)
        return None


def _attempt_lock(attempt: PaymentAttempt) -> tuple[Loan, PaymentAttempt]:
    """Lock ``attempt``'s loan, then the attempt (the global order), read afresh."""
    locked = loan_lock_with_row(
        PaymentAttempt, pk=attempt.pk, lender_id=attempt.lender_id, loan_id=attempt.loan_id
    )
    if locked is None:  # attempts are never deleted: only a row of another lender's
        raise UnknownAttempt(provider_id=attempt.attempt_ref)
    return locked


def _event_apply_locked(
    *, lender_id: int, event: PaymentEvent, attempt: PaymentAttempt | None, actor: Actor
) -> ProviderEventOutcome:
    if event.kind == EventKind.REVERSED:
        return _reversal_apply(lender_id=lender_id, event=event, actor=actor)
    if attempt is not None:
        loan, attempt = _attempt_lock(attempt)
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
    if attempt is None:  # a voucher or a failure naming no attempt: nothing to move
        return ProviderEventOutcome(status="recorded")
    # a voucher taken on a page we had given up on (the page outlives the attempt by a
    # minute) still waits for its money
    waiting = (PaymentAttempt.Status.STARTED, PaymentAttempt.Status.EXPIRED)
    if event.kind == EventKind.PENDING and attempt.status in waiting:
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
    if attempt is None and (paid := _paid_by_query(loan=loan, event=event)) is not None:
        paid.receipt = event.receipt[:100]
        paid.save(update_fields=["receipt", "updated_at"])
        return ProviderEventOutcome(
            status="duplicate", payment_id=paid.payment_id, attempt_id=paid.pk
        )
    outcome = payment_record_locked(
        loan=loan,
        amount=event.amount,
        channel=Payment.Channel.PROVIDER,
        provider=event.provider,
        provider_ref=event.reference or event.attempt_ref,
        received_at=event.received_at,
        actor=actor,
        receipt_ref=event.receipt,
        audit_data=_settles(attempt, by="callback"),
    )
    if attempt is not None:
        if (
            not outcome.created
            and PaymentAttempt.objects.filter(payment=outcome.payment)
            .exclude(pk=attempt.pk)
            .exists()
        ):
            raise ReceiptSeenBefore(reference=event.reference)
        # new, or the same money already in through another door (the paybill's
        # confirmation of this very push): the attempt is paid by it either way
        attempt.payment = outcome.payment
        attempt.receipt = event.receipt[:100]
        _attempt_settle_locked(
            attempt,
            PaymentAttempt.Status.PAID,
            detail="",
            actor=actor,
            by="callback",
            audited=not outcome.created,  # a new payment's own event names the attempt
        )
    return ProviderEventOutcome(
        status="applied" if outcome.created else "duplicate",
        payment_id=outcome.payment.pk,
        attempt_id=attempt.pk if attempt else None,
    )


def _paid_by_query(*, loan: Loan, event: PaymentEvent) -> PaymentAttempt | None:
    """A push of this loan the status query found paid (its receipt unknown, its payment
    keyed by the push's id) for the same amount in the last day: the paybill confirmation
    ``event`` may be that very money, told again under its receipt. Taken as it, once. In
    SQL written once (``ATTEMPT_PAID_BY_QUERY``): asked on every paybill confirmation."""
    if event.amount is None:
        return None
    found = select_rows(
        PaymentAttempt,
        ATTEMPT_PAID_BY_QUERY,
        {
            "loan": loan.pk,
            "provider": event.provider,
            "amount": event.amount.amount,
            "since": event.received_at - timedelta(days=1),
        },
    )
    return found[0] if found else None


def _settles(attempt: PaymentAttempt | None, *, by: str) -> dict[str, str] | None:
    """What a payment's ``payment.received`` event says of the attempt it settles."""
    if attempt is None:
        return None
    return {"attempt": str(attempt.key), "attempt_paid_by": by}


def _attempt_settle_locked(
    attempt: PaymentAttempt,
    status: str,
    *,
    detail: str,
    actor: Actor,
    by: str,
    audited: bool = True,
) -> None:
    """Move ``attempt`` to ``status`` and put it on the record, unless the caller's own
    event already says it (``audited=False``: the payment it became names the attempt)."""
    attempt.status = status
    attempt.detail = detail[:200]
    attempt.settled_at = attempt.updated_at = timezone.now()
    with connection.cursor() as cursor:  # save(update_fields=...) of these, in SQL written once
        cursor.execute(
            ATTEMPT_SETTLE,
            {
                "id": attempt.pk,
                "status": attempt.status,
                "detail": attempt.detail,
                "settled_at": attempt.settled_at,
                "payment": attempt.payment_id,
                "receipt": attempt.receipt,
            },
        )
    if not audited:
        return
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


def _unmatched(
    *, lender_id: int, event: PaymentEvent, actor: Actor, why: str = "no_such_loan"
) -> ProviderEventOutcome:
    """Money the provider took for an account number that names no loan of the lender:
    kept (its callback stored) and on the record for the back office to place."""
    audit_event_record(
        actor=actor,
        action=CollectionsAction.PAYMENT_UNMATCHED,
        lender_id=lender_id,
        data={
            "provider": event.provider,
            "reference": event.reference,
            "account": event.loan_reference[:40],
            "why": why,
            "amount": str(event.amount.amount) if event.amount else "",
            "currency": event.amount.currency if event.amount else "",
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


def payment_attempts_claim(*, now: datetime | None = None) -> list[int]:
    """Claim the open attempts to ask the provider about (started more than
    PAYMENTS_ATTEMPT_QUERY_AFTER_MINUTES ago, not asked about since; a voucher only once it
    has expired: its store payment calls back), a batch at a time, oldest first. Claimed by
    stamping ``checked_at`` in one statement that skips rows another run holds, so two runs
    at once never ask about the same attempt, and one that fails moves to the back.

    audit: none, a claim's time stamp; what the query finds is audited when it settles
    """
    now = now or timezone.now()
    quiet = now - timedelta(minutes=settings.PAYMENTS_ATTEMPT_QUERY_AFTER_MINUTES)
    with transaction.atomic():
        due = list(
            PaymentAttempt.objects.filter(status__in=PaymentAttempt.OPEN, created_at__lt=quiet)
            .exclude(checked_at__gte=quiet)
            .exclude(status=PaymentAttempt.Status.PENDING, voucher_expires_at__gt=now)
            .order_by("created_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:RECONCILE_BATCH]
        )
        PaymentAttempt.objects.filter(pk__in=due).update(checked_at=now)
    return due


def payment_attempt_reconcile(*, attempt_id: int, actor: Actor, now: datetime | None = None) -> str:
    """Ask the provider where one open attempt stands and settle it: paid (applied, the
    provider's reference as the key, received when the attempt started where the provider
    names no time), failed, expired (still waiting after PAYMENTS_ATTEMPT_EXPIRE_MINUTES by
    the provider's own answer, a voucher past its expiry, or no answer at all for a day),
    or still waiting. The provider is asked with no lock held; the answer is applied under
    the loan's lock then the attempt's, so a callback that came meanwhile wins and nothing
    applies twice. Returns the attempt's status after."""
    now = now or timezone.now()
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    if attempt.status not in PaymentAttempt.OPEN:
        return attempt.status
    status = _provider_status(attempt) if attempt.attempt_ref else None
    with transaction.atomic():
        loan, attempt = _attempt_lock(attempt)
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
                # not the time of asking: a payment made before its due date stays on time
                received_at=min(status.received_at or attempt.created_at, now),
                actor=actor,
                audit_data=_settles(attempt, by="query"),
            )
            attempt.payment = outcome.payment
            _attempt_settle_locked(
                attempt,
                PaymentAttempt.Status.PAID,
                detail="",
                actor=actor,
                by="query",
                audited=not outcome.created,
            )
        elif status is not None and status.state in (StatusKind.FAILED, StatusKind.EXPIRED):
            _attempt_settle_locked(
                attempt, status.state, detail=status.detail, actor=actor, by="query"
            )
        elif _attempt_expired(attempt, now, answered=status is not None or not attempt.attempt_ref):
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
    """Ask about every attempt due (``payment_attempts_claim``), one provider call each, a
    batch at a time. A provider that fails, or answers what we cannot read, leaves its
    attempt for a later run and never stops the others. Returns how many were asked about."""
    due = payment_attempts_claim(now=now)
    for attempt_id in due:
        try:
            payment_attempt_reconcile(attempt_id=attempt_id, actor=actor, now=now)
        except Exception:  # one attempt's trouble is logged and the run goes on
            logger.exception("payment attempt %s not reconciled", attempt_id)
    return len(due)


def _attempt_expired(attempt: PaymentAttempt, now: datetime, *, answered: bool) -> bool:
    """Given up: a voucher a day after its expiry (the shop's day closes); else
    PAYMENTS_ATTEMPT_EXPIRE_MINUTES after it started if the provider answered "still
    waiting" (or never had the request), and a day after it started if the provider never
    answered: money that came meanwhile is still applied (or kept) by its callback."""
    if attempt.voucher_expires_at is not None:
        return now > attempt.voucher_expires_at + timedelta(days=1)
    if not answered:
        return now > attempt.created_at + timedelta(days=1)
    return now > attempt.created_at + timedelta(minutes=settings.PAYMENTS_ATTEMPT_EXPIRE_MINUTES)
