from datetime import date

from apps.collections.services import payment_receipt_queue, reminders_queue
from apps.core.outbox import task_enqueue_on_commit
from apps.core.tasks import app_task
from apps.notifications.services import notifications_dispatch_for, voice_calls_dispatch

# a run with a backlog sends for this long, then hands on to a fresh run of itself (so a
# morning of reminders drains at the worker's pace, not one batch per beat)
DISPATCH_RUN_SECONDS = 50


@app_task(name="notifications.notifications_dispatch", queue="notify")
def notifications_dispatch_task() -> None:
    if notifications_dispatch_for(seconds=DISPATCH_RUN_SECONDS)["more"]:
        # the outbox keeps the hand-on if the broker is away (beat's next run would do too)
        task_enqueue_on_commit("notifications.notifications_dispatch")


# The reminders and the receipt are decided in collections and delivered here; their tasks
# keep the names under which outbox rows and queued messages already ask for them.
@app_task(name="notifications.reminders_queue", queue="notify")
def reminders_queue_task(*, lender_id: int, business_date: str) -> None:
    reminders_queue(lender_id=lender_id, business_date=date.fromisoformat(business_date))


@app_task(name="notifications.payment_receipt_queue", queue="notify")
def payment_receipt_queue_task(*, payment_id: int) -> None:
    payment_receipt_queue(payment_id=payment_id)


@app_task(name="notifications.voice_calls_dispatch", queue="notify")
def voice_calls_dispatch_task() -> None:
    voice_calls_dispatch()
