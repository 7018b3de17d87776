"""Late fees: installments reached once they become late, by the fee run or by money
received after that."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import audit_events_record
from apps.collections.events import CollectionsAction
from apps.collections.locks import installment_lock_list_for_loan
from apps.collections.models import Installment, Loan
from apps.collections.services.books import late_fee_entry, loan_books_reallocate
from apps.collections.sql import FEE_LOANS_LOCK, FEE_REACH, FEE_REACH_FOR_PAYMENT
from apps.core.actor import Actor
from apps.core.money import minor_units
from apps.core.sql import array_literal
from apps.lenders.models import Lender, LoanProduct

ZERO = Decimal(0)


def installment_fees_reach(*, loan: Loan, installments: list[Installment], until: datetime) -> bool:
    """Reach ``loan``'s installments late by ``until`` that the fee run has not reached yet
    (their fee if late recorded; the caller holds their locks). Whether any was.

    Audit: none, the payment or reversal that reaches them records its event, and the fee
    is in the allocation it writes."""
    due = [i for i in installments if i.late_fee_charged is None and i.late_from <= until]
    if loan.late_fee_type == LoanProduct.LateFeeType.NONE or not due:
        return False  # nothing to reach: no query (the webhook's hot path)
    with connection.cursor() as cursor:
        cursor.execute(
            FEE_REACH_FOR_PAYMENT,
            {"loan": loan.pk, "until": until, "places": minor_units(loan.currency)},
        )
        charged = dict(cursor.fetchall())
    for inst in installments:
        if inst.pk in charged:
            inst.late_fee_charged = charged[inst.pk]
    return bool(charged)


@transaction.atomic
def installment_late_fees_assess(
    *, lender_id: int, actor: Actor, as_of: datetime | None = None
) -> int:
    """Reach every installment of ``lender_id`` that has become late by ``as_of`` (now), and
    charge its late fee where it stands. Returns how many fees were charged.

    Beat runs it for each lender just after its business day ends
    (``LATE_FEE_LOCAL_TIME``). An installment is late from ``late_from``: the
    start of the lender's local day after its due date and grace days. The fee
    stands if the money received before then did not pay the installment,
    whenever that money is posted (a later payment received in time takes it
    back: ``loan_books_reallocate``). Each installment is reached once
    (``late_fee_charged``), so running twice, or twice at once, changes
    nothing. Locks the loans in id order, then their installments. Emits
    ``collections.late_fee.assessed`` per fee charged (and, through a replay,
    ``.reversed`` and ``collections.payment.allocated``), appended as one batch.
    """
    lender = Lender.objects.get(pk=lender_id)
    now = as_of or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(FEE_LOANS_LOCK, {"lender": lender_id, "now": now})
        loan_ids = [row[0] for row in cursor.fetchall()]
        if not loan_ids:
            return 0
        cursor.execute(
            FEE_REACH,
            {"loans": array_literal(loan_ids), "now": now, "places": minor_units(lender.currency)},
        )
        reached = cursor.fetchall()
    entries = [
        late_fee_entry(
            actor=actor,
            lender_id=lender_id,
            loan_id=loan_id,
            installment_id=installment_id,
            sequence=sequence,
            late_from=late_from,
            old=ZERO,
            new=fee,
        )
        for installment_id, loan_id, sequence, late_from, stands, fee, _ in reached
        if stands
    ]
    replayed = Loan.objects.in_bulk(sorted({row[1] for row in reached if row[6]}))
    for loan_id in sorted(replayed):
        loan = replayed[loan_id]  # locked above
        entries.extend(
            loan_books_reallocate(
                loan=loan, installments=installment_lock_list_for_loan(loan=loan), actor=actor
            )
        )
    audit_events_record(lender_id=lender_id, entries=entries)
    return sum(1 for e in entries if e.action == CollectionsAction.LATE_FEE_ASSESSED)
