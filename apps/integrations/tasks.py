from typing import Any

from django.core.cache import cache

from apps.core.outbox import task_enqueue_on_commit
from apps.core.tasks import app_task
from apps.integrations.services.webhooks import webhooks_dispatch

# a run with a backlog sends for this long, then hands on to a fresh run of itself
DISPATCH_RUN_SECONDS = 50


@app_task(name="integrations.webhooks_dispatch", queue="webhooks", bind=True)
def webhooks_dispatch_task(self: Any, *, lender_id: int | None = None) -> None:
    """Beat runs this every minute; a change with a public event nudges it after commit; it
    hands on to itself with a backlog, and when a retry falls due within the minute (one
    such follow-up at a time: the cache key says one is on its way)."""
    result = webhooks_dispatch(seconds=DISPATCH_RUN_SECONDS, lender_id=lender_id)
    if result["more"]:
        task_enqueue_on_commit("integrations.webhooks_dispatch")
    elif (
        result["retry_in"]
        and not self.request.is_eager
        and cache.add("integrations:webhooks-retry", 1, timeout=result["retry_in"])
    ):
        task_enqueue_on_commit("integrations.webhooks_dispatch", countdown=result["retry_in"])
