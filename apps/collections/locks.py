"""Row locks for collections, in the global order: lender, retailer, loan, installments, device."""

from django.db.models import QuerySet

from apps.collections.errors import LoanNotFound
from apps.collections.models import Installment, Loan


def loan_lock(*, loan_id: int, lender_id: int | None = None) -> Loan:
    """Lock one loan row (optionally only if it belongs to ``lender_id``)."""
    queryset = Loan.objects.select_for_update(of=("self",)).filter(pk=loan_id)
    if lender_id is not None:
        queryset = queryset.filter(lender_id=lender_id)
    loan = queryset.first()
    if loan is None:
        raise LoanNotFound(loan_id=loan_id)
    return loan


def installment_lock_for_loan(*, loan: Loan) -> QuerySet[Installment]:
    """Lock the loan's installments in id order (take ``loan_lock`` first)."""
    return Installment.objects.filter(loan=loan).order_by("id").select_for_update(of=("self",))
