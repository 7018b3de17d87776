"""``app_task``: the one way to declare a Celery task (STYLE.md section 13)."""

import logging
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from apps.core.idempotency import idempotency_records_purge
from apps.core.outbox import task_outbox_relay

logger = logging.getLogger("apps.tasks")


class AppTask(Task[..., Any]):
    """Logs each run with its task id and the ids it was given (never other values).

    The base of every task, whatever arguments it takes and whatever it returns."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ids = {k: v for k, v in kwargs.items() if k.endswith(("_id", "_ids"))}
        logger.info("task start name=%s id=%s ids=%s", self.name, self.request.id, ids)
        return super().__call__(*args, **kwargs)


# task name -> queue, filled by app_task and read by route_task (CELERY_TASK_ROUTES).
TASK_QUEUES: dict[str, str] = {}


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
    """Celery router: each task goes to the queue its ``app_task`` declared."""
    queue = TASK_QUEUES.get(name)
    return {"queue": queue, "routing_key": queue} if queue else None


def app_task(
    *, name: str, queue: str = "default", **options: Any
) -> Callable[[Callable[..., Any]], AppTask]:
    """Declare a task: explicit name, its queue by kind, late ack, no stored result."""
    if queue not in settings.TASK_QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue!r}; use one of {settings.TASK_QUEUE_NAMES}")
    TASK_QUEUES[name] = queue
    return shared_task(
        name=name,
        base=AppTask,
        ignore_result=True,
        acks_late=True,
        **options,
    )


@app_task(name="core.task_outbox_relay")
def task_outbox_relay_task() -> None:
    """Beat runs this every minute: tasks whose send after commit failed (broker down)."""
    task_outbox_relay()


@app_task(name="core.idempotency_records_purge")
def idempotency_records_purge_task() -> None:
    """Beat runs this hourly: the stored answers to idempotent POSTs past their day."""
    idempotency_records_purge()
