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

    from apps.lenders.models import Lender

    for lender_id in Lender.objects.values_list("pk", flat=True):
        transaction.on_commit(
            lambda lender_id=lender_id: installment_late_fees_assess.delay(lender_id=lender_id)
        )
