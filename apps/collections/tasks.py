from apps.core.tasks import app_task


@app_task(name="collections.installment_late_fees_assess", queue="sweep")
def installment_late_fees_assess(*, lender_id: int) -> None:
    from apps.collections.services import installment_late_fees_assess as assess
    from apps.core.actor import Actor

    assess(lender_id=lender_id, actor=Actor.system())


@app_task(name="collections.installment_late_fees_assess_all", queue="sweep")
def installment_late_fees_assess_all() -> None:
    """Fan out one idempotent late-fee task per lender (each its own transaction)."""
    from django.db import transaction

    from apps.core.outbox import task_enqueue_on_commit
    from apps.lenders.models import Lender

    with transaction.atomic():
        for lender_id in Lender.objects.values_list("pk", flat=True):
            task_enqueue_on_commit(installment_late_fees_assess, lender_id=lender_id)


@app_task(name="collections.loan_stage_sweep_lender", queue="sweep")
def loan_stage_sweep_lender_task(*, lender_id: int) -> None:
    """Beat runs this at the lender's local morning: one range task per slice of loans,
    and the day's due-date reminders.

    The business date is fixed here, so every range of one run agrees on it
    and a redelivered range task changes nothing twice.
    """
    from django.conf import settings
    from django.db import transaction

    from apps.collections.services.restriction import lender_business_date, loan_sweep_ranges
    from apps.core.outbox import task_enqueue_on_commit
    from apps.notifications.tasks import reminders_queue_task

    business_date = lender_business_date(lender_id=lender_id).isoformat()
    with transaction.atomic():
        task_enqueue_on_commit(
            reminders_queue_task, lender_id=lender_id, business_date=business_date
        )
        for id_from, id_to in loan_sweep_ranges(
            lender_id=lender_id, size=settings.SWEEP_RANGE_SIZE
        ):
            task_enqueue_on_commit(loan_stage_sweep_range_task, lender_id=lender_id,
                                   business_date=business_date, id_from=id_from, id_to=id_to)  # fmt: skip


@app_task(name="collections.loan_stage_sweep_range", queue="sweep")
def loan_stage_sweep_range_task(
    *, lender_id: int, business_date: str, id_from: int, id_to: int
) -> None:
    from datetime import date

    from apps.collections.services.restriction import loan_stage_sweep

    loan_stage_sweep(lender_id=lender_id, business_date=date.fromisoformat(business_date),
                     id_from=id_from, id_to=id_to)  # fmt: skip


@app_task(name="collections.overdue_notices_queue", queue="sweep")
def overdue_notices_queue_task(
    *, lender_id: int, business_date: str, id_from: int, id_to: int
) -> None:
    from datetime import date

    from apps.collections.services.restriction import overdue_notices_queue

    overdue_notices_queue(lender_id=lender_id, business_date=date.fromisoformat(business_date),
                          id_from=id_from, id_to=id_to)  # fmt: skip
