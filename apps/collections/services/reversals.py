"""Chargebacks and refunds: a reversal of a payment, and the replay of the books it needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from apps.audit.services import AuditEntry, audit_events_record
from apps.collections.errors import ReversalExceedsPayment
from apps.collections.events import CollectionsAction
from apps.collections.locks import installment_lock_for_loan, loan_lock, loan_phones_lock
from apps.collections.models import Loan, LoanStageChange, Payment, PaymentReversal, Stage
from apps.collections.services.books import loan_books_reallocate
from apps.collections.services.payments import payment_amount_check
from apps.collections.services.settle import loan_stage_settle
from apps.core.actor import Actor
from apps.core.errors import IdempotencyConflict
from apps.core.money import Money

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ReversalOutcome:
    reversal: PaymentReversal
    created: bool


@transaction.atomic
def payment_reverse(
    *,
    loan_id: int,
    kind: str,
    amount: Money,
    provider: str,
    provider_ref: str,
    payment_provider_ref: str,
    received_at: datetime,
    actor: Actor,
    lender_id: int | None = None,
    reason: str = "",
) -> ReversalOutcome:
    """Record a chargeback or refund and re-allocate the loan's payments deterministically.

    The reversal may arrive before the payment it refers to; it then waits,
    matched by the payment's provider reference, and takes effect when the
    payment arrives. Locks like ``payment_record``. Idempotent on
    (lender, provider, provider_ref). Emits ``collections.payment.reversed``.
    """
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    installments = list(installment_lock_for_loan(loan=loan))
    existing = PaymentReversal.objects.filter(
        lender_id=loan.lender_id, provider=provider, provider_ref=provider_ref
    ).first()
    if existing is not None:
        same = (existing.loan_id, existing.amount, existing.payment_provider_ref) == (
            loan.pk,
            amount.amount,
            payment_provider_ref,
        )
        if not same:
            raise IdempotencyConflict(provider_ref=provider_ref)
        return ReversalOutcome(reversal=existing, created=False)
    payment_amount_check(loan=loan, amount=amount)
    original = Payment.objects.filter(
        lender_id=loan.lender_id, provider=provider, provider_ref=payment_provider_ref
    ).first()
    if original is not None:
        if original.loan_id != loan.pk:
            raise ReversalExceedsPayment("The payment belongs to another loan.")
        already = (
            PaymentReversal.objects.filter(
                lender_id=loan.lender_id,
                provider=provider,
                payment_provider_ref=payment_provider_ref,
            ).aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        if already + amount.amount > original.amount:
            raise ReversalExceedsPayment(payment_ref=payment_provider_ref)
    reversal = PaymentReversal(
        lender_id=loan.lender_id,
        loan=loan,
        kind=kind,
        amount=amount.amount,
        currency=amount.currency,
        provider=provider,
        provider_ref=provider_ref,
        payment_provider_ref=payment_provider_ref,
        received_at=received_at,
        reason=reason,
    )
    reversal.full_clean(
        exclude=["lender", "loan"], validate_unique=False, validate_constraints=False
    )
    reversal.save(force_insert=True)
    reversed_entry = AuditEntry(
        actor=actor,
        action=CollectionsAction.PAYMENT_REVERSED,
        target=loan,
        reason=reason,
        data={
            "reversal_id": reversal.pk,
            "kind": kind,
            "amount": amount.amount,
            "payment_provider_ref": payment_provider_ref,
            "payment_known": original is not None,
        },
    )
    entries = [
        reversed_entry,
        *loan_books_reallocate(loan=loan, installments=installments, actor=actor),
    ]
    if loan.stage != Stage.NONE or loan.status == Loan.Status.PAID_OFF:
        loan_phones_lock(loan=loan)  # the replay may lower the stage or pay the loan off
    audit_events_record(lender_id=loan.lender_id, entries=entries)
    loan_stage_settle(loan=loan, actor=actor, cause=LoanStageChange.Cause.PAYMENT)
    return ReversalOutcome(reversal=reversal, created=True)
