from apps.core.outbox import task_enqueue_on_commit
from apps.core.tasks import app_task
from apps.integrations.services.webhooks import webhooks_dispatch

# a run with a backlog sends for this long, then hands on to a fresh run of itself
DISPATCH_RUN_SECONDS = 50


@app_task(name="integrations.webhooks_dispatch", queue="webhooks")
def webhooks_dispatch_task(*, lender_id: int | None = None) -> None:
    """Beat runs this every minute; a change with a public event nudges it after commit."""
    if webhooks_dispatch(seconds=DISPATCH_RUN_SECONDS, lender_id=lender_id)["more"]:
        task_enqueue_on_commit("integrations.webhooks_dispatch")
