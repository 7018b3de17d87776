"""Money received for a loan: stored once per provider reference and allocated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps.audit.services import AuditEntry, audit_events_record
from apps.collections.errors import AmountNotInMinorUnits, CurrencyMismatch, LoanNotPayable
from apps.collections.events import CollectionsAction
from apps.collections.locks import installment_lock_list_for_loan, loan_lock, loan_phones_lock
from apps.collections.models import Loan, LoanStageChange, Payment, Stage
from apps.collections.services.books import loan_books_reallocate
from apps.collections.services.late_fees import installment_fees_reach
from apps.collections.services.loans import require_minor_units
from apps.collections.services.settle import loan_stage_settle
from apps.collections.sql import PAYMENT_INSERT, PAYMENT_POSITION
from apps.core.actor import Actor
from apps.core.errors import DomainError, IdempotencyConflict
from apps.core.money import Money
from apps.core.outbox import task_enqueue_on_commit
from apps.core.sql import insert_values, mark_saved

PAYABLE = frozenset({Loan.Status.ACTIVE, Loan.Status.WRITTEN_OFF, Loan.Status.PAID_OFF})


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    payment: Payment
    created: bool


def payment_amount_check(*, loan: Loan, amount: Money) -> None:
    if amount.currency != loan.currency:
        raise CurrencyMismatch(expected=loan.currency, got=amount.currency)
    require_minor_units(amount)
    if amount.amount <= 0:
        raise AmountNotInMinorUnits("The amount must be above zero.")


def _payment_existing(*, loan: Loan, provider: str, provider_ref: str) -> Payment | None:
    return Payment.objects.filter(
        lender_id=loan.lender_id, provider=provider, provider_ref=provider_ref
    ).first()


def _same_payment_or_conflict(
    existing: Payment, *, loan: Loan, amount: Money, provider_ref: str
) -> PaymentOutcome:
    if (existing.loan_id, existing.amount, existing.currency) != (
        loan.pk,
        amount.amount,
        amount.currency,
    ):
        raise IdempotencyConflict(provider_ref=provider_ref)
    return PaymentOutcome(payment=existing, created=False)


@transaction.atomic
def payment_record(
    *,
    loan_id: int,
    amount: Money,
    channel: str,
    provider: str,
    provider_ref: str,
    received_at: datetime,
    actor: Actor,
    lender_id: int | None = None,
    reason: str = "",
    receipt_ref: str = "",
) -> PaymentOutcome:
    """Record money received for a loan and re-allocate the loan's payments.

    Locks the loan, then its installments, then the loan's phones when the
    stage may come down or the loan is paid off, and the audit chain's head
    last (the global order). Idempotent on (lender, provider, provider_ref):
    the same reference with the same loan and amount returns the first
    payment; with anything else it raises IdempotencyConflict. A payment on a
    paid-off loan is kept as a credit: the money arrived. Emits
    ``collections.payment.received`` and, through the re-allocation,
    ``collections.payment.allocated`` and ``collections.loan.paid_off``. The
    loan's restriction stage drops in the same transaction if the payment
    earns it (``loan_stage_settle``), and a payoff releases the phone: the
    new desired state is pushed after commit.
    """
    return payment_record_locked(
        loan=loan_lock(loan_id=loan_id, lender_id=lender_id),
        amount=amount,
        channel=channel,
        provider=provider,
        provider_ref=provider_ref,
        received_at=received_at,
        actor=actor,
        reason=reason,
        receipt_ref=receipt_ref,
    )


def payment_record_locked(
    *,
    loan: Loan,
    amount: Money,
    channel: str,
    provider: str,
    provider_ref: str,
    received_at: datetime,
    actor: Actor,
    reason: str = "",
    receipt_ref: str = "",
    audit_data: dict[str, Any] | None = None,
) -> PaymentOutcome:
    """``payment_record`` once the caller holds ``loan``'s row lock, inside its transaction.

    Same contract and checks. A reference already stored is answered first,
    whatever else is wrong with the call, as when the read came first: a
    refusal (amount, status, a reversal naming another loan) is raised only
    when no payment has the reference. The payment is stored with
    ``INSERT ... ON CONFLICT DO NOTHING``, so the unique constraint, not a
    read beforehand, says whether the reference is taken; a conflict with a
    concurrent insert on another loan waits for it and then reads it
    (IdempotencyConflict, as before). ``audit_data`` joins the ``payment.received``
    event's data (the attempt a provider's payment settles, told in the same append).
    tests/collections/test_api_webhook.py.
    """
    installments = installment_lock_list_for_loan(loan=loan)
    payment = Payment(
        lender_id=loan.lender_id,
        loan=loan,
        amount=amount.amount,
        currency=amount.currency,
        channel=channel,
        provider=provider,
        provider_ref=provider_ref,
        received_at=received_at,
        reason=reason,
        receipt_ref=receipt_ref,
    )
    try:
        payment_amount_check(loan=loan, amount=amount)
        if loan.status not in PAYABLE:
            raise LoanNotPayable(loan_id=loan.pk, status=loan.status)
        payment.full_clean(
            exclude=["lender", "loan"], validate_unique=False, validate_constraints=False
        )
        misfiled, comes_last = _payment_position(loan=loan, payment=payment)
        if misfiled:  # a reversal that came first named another loan: settle it first
            raise IdempotencyConflict(
                "A reversal of this payment names another loan.", provider_ref=provider_ref
            )
    except (DomainError, ValidationError):
        existing = _payment_existing(loan=loan, provider=provider, provider_ref=provider_ref)
        if existing is not None:
            return _same_payment_or_conflict(
                existing, loan=loan, amount=amount, provider_ref=provider_ref
            )
        raise
    with connection.cursor() as cursor:
        cursor.execute(PAYMENT_INSERT, insert_values(payment))
        row = cursor.fetchone()
    if row is None:  # the reference is taken, by a committed payment
        existing = _payment_existing(loan=loan, provider=provider, provider_ref=provider_ref)
        if existing is None:  # its transaction rolled back after all; as a race on another loan
            raise IdempotencyConflict(provider_ref=provider_ref)
        return _same_payment_or_conflict(
            existing, loan=loan, amount=amount, provider_ref=provider_ref
        )
    mark_saved(payment, row[0])
    if installment_fees_reach(loan=loan, installments=installments, until=received_at):
        comes_last = False  # installments late by the time it was received: the replay decides
    received = AuditEntry(
        actor=actor,
        action=CollectionsAction.PAYMENT_RECEIVED,
        target=loan,
        reason=reason,
        data={
            "payment_id": payment.pk,
            "amount": amount.amount,
            "currency": amount.currency,
            "channel": channel,
            "provider": provider,
            "provider_ref": provider_ref,
            "received_at": received_at,
            "receipt_ref": receipt_ref,
            **(audit_data or {}),
        },
    )
    allocated = loan_books_reallocate(
        loan=loan,
        installments=installments,
        actor=actor,
        new_payment=payment if comes_last else None,
    )
    if loan.stage != Stage.NONE or loan.status == Loan.Status.PAID_OFF:
        loan_phones_lock(loan=loan)  # the stage comes down, or the phone is released, below
    audit_events_record(lender_id=loan.lender_id, entries=[received, *allocated])
    loan_stage_settle(loan=loan, actor=actor, cause=LoanStageChange.Cause.PAYMENT)
    task_enqueue_on_commit("notifications.payment_receipt_queue", payment_id=payment.pk)
    return PaymentOutcome(payment=payment, created=True)


def _payment_position(*, loan: Loan, payment: Payment) -> tuple[bool, bool]:
    """(misfiled, comes_last) for ``payment``, not yet stored, under ``loan``'s lock.

    misfiled: a reversal of its reference, arrived first, names another loan.
    comes_last: no payment of the loan sorts after it, nothing reverses it, and
    it was received once every installment the fee run reached was late (so it
    decides no late fee), so allocating it on top of the books equals a full
    replay.
    """
    params: dict[str, Any] = {
        "lender": loan.lender_id,
        "loan": loan.pk,
        "t": payment.received_at,
        "p": payment.provider,
        "r": payment.provider_ref,
    }
    with connection.cursor() as cursor:
        cursor.execute(PAYMENT_POSITION, params)
        misfiled, comes_last = cursor.fetchone()
    return bool(misfiled), bool(comes_last)
