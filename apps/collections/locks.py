"""Row locks for collections, in the global order: lender, retailer, loan, installments, device,
and the audit chain's head last (apps/audit/locks.py). A writer that will change a phone's state
after recording an audit event takes the phone's row first (``loan_phones_lock``)."""

from typing import TypeVar

from django.db import connection
from django.db.models import Model, QuerySet

from apps.collections.errors import LoanNotFound
from apps.collections.models import Installment, Loan
from apps.collections.sql import (
    INSTALLMENTS_LOCK,
    LOAN_LOCK,
    LOAN_LOCK_BY_REFERENCE,
    loan_row_lock,
)
from apps.core.sql import select_rows
from apps.devices.locks import devices_lock_for_loans

M = TypeVar("M", bound=Model)


def loan_lock(*, loan_id: int, lender_id: int | None = None) -> Loan:
    """Lock one loan row (optionally only if it belongs to ``lender_id``), in SQL written once
    (``LOAN_LOCK``): every write to a loan takes it first."""
    found = select_rows(Loan, LOAN_LOCK, {"loan": loan_id, "lender": lender_id})
    if not found:
        raise LoanNotFound(loan_id=loan_id)
    return found[0]


def installment_lock_for_loan(*, loan: Loan) -> QuerySet[Installment]:
    """Lock the loan's installments in id order (take ``loan_lock`` first)."""
    return Installment.objects.filter(loan=loan).order_by("id").select_for_update(of=("self",))


def loan_lock_by_reference(*, lender_id: int, reference: str) -> Loan:
    """Find and lock the loan ``reference`` of ``lender_id`` in one query.

    The same row lock ``loan_lock`` takes, without reading the id first.
    LoanNotFound names the reference, as ``loan_id_by_reference`` does.
    """
    found = select_rows(Loan, LOAN_LOCK_BY_REFERENCE, [lender_id, reference])
    if not found:
        raise LoanNotFound(reference=reference)
    return found[0]


def installment_lock_list_for_loan(*, loan: Loan) -> list[Installment]:
    """The rows of ``installment_lock_for_loan``, locked in id order (take the loan first), in
    SQL written once: the webhook takes them on every call, and compiling the queryset costs
    more CPU than running it (tests/collections/test_api_webhook_hot_path.py)."""
    return select_rows(Installment, INSTALLMENTS_LOCK, [loan.pk])


def loan_lock_with_row(
    model: type[M], *, pk: int, lender_id: int, loan_id: int | None = None
) -> tuple[Loan, M] | None:
    """Lock the loan that ``model``'s row ``pk`` (of ``lender_id``) belongs to, then the row
    itself (the global order: the loan first); the row comes with its loan. None if the
    lender has no such row. ``loan_id`` when the caller read it already (a row's loan never
    changes) saves reading it again."""
    if loan_id is None:
        owned = model._default_manager.filter(pk=pk, lender_id=lender_id)
        loan_id = owned.values_list("loan_id", flat=True).first()
    if loan_id is None:
        return None
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    locked = select_rows(model, loan_row_lock(model), [pk, loan_id])
    if not locked:
        return None
    found = locked[0]
    found.loan = loan  # type: ignore[attr-defined]  # M is a row of a loan: it has one
    return loan, found


def loan_phones_lock(*, loan: Loan) -> None:
    """Lock ``loan``'s phones (the caller holds the loan and its installments) before an audit
    event is recorded, when the stage may then move and write a phone's state: the chain's head
    comes after the device in the global order, as every device writer takes them
    (tests/collections/test_races_restriction.py::
    test_a_payment_and_a_device_writer_at_once_do_not_deadlock)."""
    with connection.cursor() as cursor:
        devices_lock_for_loans(cursor, loan_ids=[loan.pk])
