from apps.core.tasks import app_task


@app_task(name="notifications.notifications_dispatch", queue="notify")
def notifications_dispatch_task() -> None:
    from apps.notifications.services import notifications_dispatch

    notifications_dispatch()


@app_task(name="notifications.reminders_queue", queue="notify")
def reminders_queue_task(*, lender_id: int, business_date: str) -> None:
    from datetime import date

    from apps.notifications.services import reminders_queue

    reminders_queue(lender_id=lender_id, business_date=date.fromisoformat(business_date))


@app_task(name="notifications.payment_receipt_queue", queue="notify")
def payment_receipt_queue_task(*, payment_id: int) -> None:
    from apps.notifications.services import payment_receipt_queue

    payment_receipt_queue(payment_id=payment_id)
