from datetime import date

from django.conf import settings

from apps.collections.services import (
    installment_late_fees_assess,
    loan_stage_sweep,
    loan_sweep_fan_out,
    overdue_notices_queue,
    payment_attempts_reconcile,
    reconciliation_reports_build,
    restriction_notices_queue,
    restrictions_suspension_apply,
)
from apps.core.actor import Actor
from apps.core.tasks import app_task


@app_task(name="collections.installment_late_fees_assess", queue="sweep")
def installment_late_fees_assess_task(*, lender_id: int) -> None:
    """Beat runs this just after each lender's business day ends (its local time)."""
    installment_late_fees_assess(lender_id=lender_id, actor=Actor.system())


@app_task(name="collections.loan_stage_sweep_lender", queue="sweep")
def loan_stage_sweep_lender_task(*, lender_id: int) -> None:
    """Beat runs this at the lender's local morning: one range task per slice of loans,
    and the day's due-date reminders."""
    loan_sweep_fan_out(lender_id=lender_id, size=settings.SWEEP_RANGE_SIZE)


@app_task(name="collections.loan_stage_sweep_range", queue="sweep")
def loan_stage_sweep_range_task(
    *, lender_id: int, business_date: str, id_from: int, id_to: int
) -> None:
    loan_stage_sweep(
        lender_id=lender_id,
        business_date=date.fromisoformat(business_date),
        id_from=id_from,
        id_to=id_to,
    )


@app_task(name="collections.overdue_notices_queue", queue="sweep")
def overdue_notices_queue_task(
    *, lender_id: int, business_date: str, id_from: int, id_to: int
) -> None:
    overdue_notices_queue(
        lender_id=lender_id,
        business_date=date.fromisoformat(business_date),
        id_from=id_from,
        id_to=id_to,
    )


@app_task(name="collections.restrictions_suspension_apply", queue="sweep")
def restrictions_suspension_apply_task(*, lender_id: int, suspension_id: int) -> None:
    restrictions_suspension_apply(lender_id=lender_id, suspension_id=suspension_id)


@app_task(name="collections.restriction_notices_queue", queue="sweep")
def restriction_notices_queue_task(*, lender_id: int, business_date: str, loans: list) -> None:
    restriction_notices_queue(
        lender_id=lender_id, business_date=date.fromisoformat(business_date), loans=loans
    )


@app_task(name="collections.payment_attempts_reconcile", queue="default")
def payment_attempts_reconcile_task() -> int:
    """Beat runs this every minute: each payment started through a provider with no
    callback for a few minutes is asked about and settled (one provider call each, a
    batch at a time). Returns how many were asked about."""
    return payment_attempts_reconcile(actor=Actor.system())


@app_task(name="collections.reconciliation_reports_build", queue="default")
def reconciliation_reports_build_task() -> int:
    """Beat runs this early each UTC morning: for every lender and provider in use, the
    report of yesterday in the lender's timezone (a day already over everywhere). Safe to
    run twice: a day built again replaces its report. Returns how many were built."""
    return len(reconciliation_reports_build(actor=Actor.system()))
