"""A loan's books: the allocation of its payments, brought up to date (on top of the books or
by a full replay), the ledger lines, the paid columns, the late fees and the payoff it decides."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import AuditEntry, audit_events_record
from apps.collections.allocation import (
    COMPONENTS,
    Allocated,
    InstallmentDue,
    PaymentIn,
    allocate,
    allocate_next,
    ledger_delta,
)
from apps.collections.events import CollectionsAction
from apps.collections.locks import installment_lock_list_for_loan, loan_lock, loan_phones_lock
from apps.collections.models import (
    Allocation,
    Installment,
    Loan,
    LoanStageChange,
    Payment,
    Stage,
)
from apps.collections.services.loans import loan_transition
from apps.collections.services.settle import loan_stage_settle
from apps.collections.sql import (
    LEDGER_NET,
    PAYMENTS_IN,
    allocations_insert,
    installments_paid_update,
)
from apps.core.actor import Actor
from apps.core.sql import insert_values

ZERO = Decimal(0)


def _payment_in(payment: Payment, reversed_amount: Decimal) -> PaymentIn:
    return PaymentIn(
        id=payment.pk,
        received_at=payment.received_at,
        provider=payment.provider,
        provider_ref=payment.provider_ref,
        amount=max(ZERO, payment.amount - reversed_amount),
    )


def _payments_in(*, loan: Loan) -> list[PaymentIn]:
    """Every payment of ``loan``, each less what reverses it (whenever that arrived); in SQL
    written once (``PAYMENTS_IN``): a replay reads them all."""
    with connection.cursor() as cursor:
        cursor.execute(PAYMENTS_IN, [loan.pk])
        rows = cursor.fetchall()
    return [
        PaymentIn(
            id=pk,
            received_at=received_at,
            provider=provider,
            provider_ref=provider_ref,
            amount=max(ZERO, amount - reversed_amount),
        )
        for pk, received_at, provider, provider_ref, amount, reversed_amount in rows
    ]


def _ledger_net(*, loan: Loan) -> dict[tuple[int, int, str], Decimal]:
    net: dict[tuple[int, int, str], Decimal] = defaultdict(lambda: ZERO)
    with connection.cursor() as cursor:
        cursor.execute(LEDGER_NET, [loan.pk])
        rows = cursor.fetchall()
    for payment_id, installment_id, component, direction, total in rows:
        sign = 1 if direction == Allocation.Direction.CREDIT else -1
        net[(payment_id, installment_id, component)] += sign * total
    return net


def _installments_paid_update(*, installments: list[Installment], result: Allocated) -> None:
    """Write the paid columns, the paid time and the late fee of the installments that
    changed, in one statement (so the checks see each row whole)."""
    rows, params = 0, []
    for inst in installments:
        values = [result.paid[inst.pk][c] for c in COMPONENTS]
        fee = (result.late_fee[inst.pk], result.late_fee_assessed_at[inst.pk])
        if (
            values == [getattr(inst, f"{c}_paid") for c in COMPONENTS]
            and result.paid_at[inst.pk] == inst.paid_at
            and fee == (inst.late_fee_amount, inst.late_fee_assessed_at)
        ):
            continue
        rows += 1
        params.extend([inst.pk, *values, result.paid_at[inst.pk], *fee])
        for component, value in zip(COMPONENTS, values, strict=True):
            setattr(inst, f"{component}_paid", value)
        inst.paid_at = result.paid_at[inst.pk]
        inst.late_fee_amount, inst.late_fee_assessed_at = fee
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(installments_paid_update(rows=rows), [timezone.now(), *params])


def _allocations_insert(allocations: list[Allocation]) -> None:
    """``bulk_create`` of ledger lines in one statement, without compiling a queryset."""
    if allocations:
        params = [value for allocation in allocations for value in insert_values(allocation)]
        with connection.cursor() as cursor:
            cursor.execute(allocations_insert(rows=len(allocations)), params)


def loan_books_reallocate(
    *,
    loan: Loan,
    installments: list[Installment],
    actor: Actor,
    new_payment: Payment | None = None,
) -> list[AuditEntry]:
    """Bring the allocation of ``loan``'s payments up to date and append the ledger lines.

    The books always equal a replay of every payment in canonical order. When
    the only change is ``new_payment`` and it comes last in that order with
    nothing reversing it (the usual case; the caller passes it only then, see
    ``_payment_position``), allocating just that payment on top of the books
    gives the same result (``allocate_next``) without reading the loan's whole
    history; anything else (a reversal, a backdated payment) replays everything. Caller holds the loan and installment locks and
    records the returned audit entries (allocation, payoff or reopening) with
    its own, so the chain head is locked only at the very end. Writes only
    differences, so a replay that changes nothing writes nothing.
    """
    entries: list[AuditEntry] = []
    dues = [
        InstallmentDue(
            id=i.pk,
            sequence=i.sequence,
            late_fee_assessed_at=i.late_fee_assessed_at,
            due={c: getattr(i, f"{c}_amount") for c in COMPONENTS},
            settled_at=i.paid_at,
            late_fee_charged=i.late_fee_charged,
            late_from=i.late_from,
        )
        for i in installments
    ]
    fees_before = {i.pk: i.late_fee_amount for i in installments}
    if new_payment is not None:
        paid = {i.pk: {c: getattr(i, f"{c}_paid") for c in COMPONENTS} for i in installments}
        result = allocate_next(
            dues, paid, {i.pk: i.paid_at for i in installments}, _payment_in(new_payment, ZERO)
        )
        delta = dict(result.lines)
    else:
        result = allocate(dues, _payments_in(loan=loan))
        delta = ledger_delta(result.lines, _ledger_net(loan=loan))
    entries.extend(
        _late_fee_entries(
            loan=loan, installments=installments, before=fees_before, result=result, actor=actor
        )
    )
    _installments_paid_update(installments=installments, result=result)  # changed rows only
    if delta:
        _allocations_insert(
            [
                Allocation(
                    lender_id=loan.lender_id,
                    loan=loan,
                    payment_id=payment_id,
                    installment_id=installment_id,
                    component=component,
                    amount=abs(amount),
                    direction=Allocation.Direction.CREDIT
                    if amount > 0
                    else Allocation.Direction.DEBIT,
                )
                for (payment_id, installment_id, component), amount in sorted(delta.items())
            ]
        )
        allocated = AuditEntry(
            actor=actor,
            action=CollectionsAction.PAYMENT_ALLOCATED,
            target=loan,
            data={
                "lines": [
                    {"payment_id": p, "installment_id": i, "component": c, "amount": a}
                    for (p, i, c), a in sorted(delta.items())
                ],
                "unapplied": {str(k): v for k, v in result.unapplied.items() if v},
            },
        )
        entries.append(allocated)

    outstanding = result.outstanding(dues)
    if outstanding == 0 and loan.status in (Loan.Status.ACTIVE, Loan.Status.WRITTEN_OFF):
        entries.append(loan_transition(loan=loan, to=Loan.Status.PAID_OFF, actor=actor))
    elif outstanding > 0 and loan.status == Loan.Status.PAID_OFF:
        reopened = loan_transition(
            loan=loan,
            to=Loan.Status.ACTIVE,
            actor=actor,
            reason="The balance was reopened: a payment was reversed, or a late fee came due.",
        )
        entries.append(reopened)
        if loan.collateral_released_at is not None:  # the phone is free: off the ladder for good
            entries.append(
                AuditEntry(
                    actor=actor,
                    action=CollectionsAction.LOAN_RELEASED_WITH_ARREARS,
                    target=loan,
                    data={
                        "outstanding": outstanding,
                        "currency": loan.currency,
                        "released_at": loan.collateral_released_at,
                    },
                    reason="Reopened after its phone was released: it can no longer be restricted.",
                )
            )
    return entries


def late_fee_entry(
    *,
    actor: Actor,
    lender_id: int,
    loan_id: int,
    installment_id: int,
    sequence: int,
    late_from: date | None,
    old: Decimal,
    new: Decimal,
) -> AuditEntry:
    """The audit event of an installment's late fee going from ``old`` to ``new``: assessed
    (it was not paid before it became late) or reversed (it was). The one shape of both
    events, for the fee run and for the replay."""
    assessed = new > old
    return AuditEntry(
        actor=actor,
        action=CollectionsAction.LATE_FEE_ASSESSED
        if assessed
        else CollectionsAction.LATE_FEE_REVERSED,
        target=Installment(pk=installment_id, lender_id=lender_id),
        data={
            "loan_id": loan_id,
            "sequence": sequence,
            "old": old,
            "new": new,
            "late_from": late_from,
        },
        reason="The installment was not paid before it became late."
        if assessed
        else "The installment was paid before it became late.",
    )


def _late_fee_entries(
    *,
    loan: Loan,
    installments: list[Installment],
    before: dict[int, Decimal],
    result: Allocated,
    actor: Actor,
) -> list[AuditEntry]:
    """The audit events of the late fees the replay changed: one assessed (money received
    before the installment became late was taken back, or the fee run reached an
    installment paid after it did) or reversed (money received in time was posted after the
    fee run)."""
    return [
        late_fee_entry(
            actor=actor,
            lender_id=loan.lender_id,
            loan_id=loan.pk,
            installment_id=inst.pk,
            sequence=inst.sequence,
            late_from=inst.late_from,
            old=before[inst.pk],
            new=result.late_fee[inst.pk],
        )
        for inst in installments
        if before[inst.pk] != result.late_fee[inst.pk]
    ]


@transaction.atomic
def loan_books_replay(*, loan_id: int, actor: Actor) -> bool:
    """Replay all of ``loan_id``'s payments and reversals (the full replay: late fees decided by
    when money was received), append what differs, and settle its stage. Whether anything
    changed.

    For books written before late fees followed received time (``manage.py
    late_fees_replay``): a fee the old run stamped on an installment paid in
    time is taken back, the stage lowered if that makes the loan less late,
    the phone released if it pays the loan off. Locks the loan, its
    installments, its phones, then the chain. Safe to run again: a second run
    changes nothing.
    """
    loan = loan_lock(loan_id=loan_id)
    installments = installment_lock_list_for_loan(loan=loan)
    entries = loan_books_reallocate(loan=loan, installments=installments, actor=actor)
    if not entries:
        return False
    if loan.stage != Stage.NONE or loan.status == Loan.Status.PAID_OFF:
        loan_phones_lock(loan=loan)
    audit_events_record(lender_id=loan.lender_id, entries=entries)
    loan_stage_settle(
        loan=loan,
        actor=actor,
        cause=LoanStageChange.Cause.PAYMENT,
        reason="The books were replayed by received time.",
    )
    return True
