"""Tasks sent after commit that a broker outage cannot lose.

``task_enqueue_on_commit`` writes the task into ``TaskOutbox`` in the caller's
transaction and sends it once that commits; the row goes once the broker has
it. If the broker is down, the row stays and ``task_outbox_relay`` (beat, every
minute) sends it when the broker is back. A task sent twice is harmless: every
task is idempotent (STYLE.md section 13).
"""

from __future__ import annotations

import functools
import logging
import threading
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.core.models import TaskOutbox
from apps.core.sql import OUTBOX_DELETE, array_literal, insert_values, mark_saved, outbox_insert

logger = logging.getLogger(__name__)


@functools.cache
def broker_errors() -> tuple[type[BaseException], ...]:
    """What publishing raises when the broker cannot be reached: kombu's wrapper and the
    transport's connection errors (the Redis client's are not ``OSError``), less the
    ``KeyError`` the Redis transport lists. A task's own error (run in place when tasks
    are eager) is none of them, and propagates."""
    transport = current_app.connection_for_write().connection_errors
    return (OperationalError, OSError, *(e for e in transport if not issubclass(e, LookupError)))


_discovery = threading.Lock()


def task_named(name: str) -> Any:
    """The registered task called ``name`` (its ``app_task`` name). Services name the tasks
    they start instead of importing them: tasks sit above services (they call them), so an
    import would run up the layers. An unknown name raises ``KeyError`` at once.

    A web process has not imported the apps' tasks modules until it first needs one; the
    first caller imports them (Celery's autodiscovery) while the others wait, so no thread
    looks a name up in a half-filled registry (two phones enrolling at once did)."""
    tasks = current_app.tasks
    if name not in tasks:
        with _discovery:
            current_app.loader.import_default_modules()
    return tasks[name]


def task_enqueue_on_commit(name: str, *, countdown: int = 0, **kwargs: Any) -> None:
    """Send the task ``name`` with ``kwargs`` (ids and ISO dates: JSON) once the transaction
    commits, to run ``countdown`` seconds later. A task the relay sends (its first send
    failed) runs when sent: a task given a countdown checks for itself whether its time came."""
    tasks_enqueue_on_commit(name, [kwargs], countdown=countdown)


def tasks_enqueue_on_commit(name: str, calls: list[dict[str, Any]], *, countdown: int = 0) -> None:
    """``task_enqueue_on_commit`` for many calls of one task (a fan-out): one insert, and
    after commit one delete of those the broker took."""
    task = task_named(name)
    if not calls:  # a fan-out to nobody: nothing to write, nothing to send
        return
    rows = [TaskOutbox(task=task.name, kwargs=k) for k in calls]
    # bulk_create in SQL written once: every payment writes one (apps/core/sql.py)
    with connection.cursor() as cursor:
        cursor.execute(
            outbox_insert(rows=len(rows)), [v for row in rows for v in insert_values(row)]
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            mark_saved(row, pk)
    transaction.on_commit(lambda: _send(task=task, rows=rows, countdown=countdown))


def _send(*, task: Task[..., Any], rows: list[TaskOutbox], countdown: int = 0) -> None:
    sent = []
    for row in rows:
        try:
            # no publish retries: with the broker down, the request that committed answers at once
            if countdown:
                task.apply_async(kwargs=row.kwargs, retry=False, countdown=countdown)
            else:
                task.apply_async(kwargs=row.kwargs, retry=False)
        except broker_errors():  # the relay sends the rest later
            logger.warning("task %s kept in the outbox for the relay", task.name, exc_info=True)
            break
        sent.append(row.pk)
    if sent:
        with connection.cursor() as cursor:
            cursor.execute(OUTBOX_DELETE, [array_literal(sent)])


def task_outbox_relay(*, batch: int = 500) -> int:
    """Send the tasks left in the outbox for longer than ``TASK_OUTBOX_GRACE_SECONDS`` (their
    own after-commit send failed, or its process died). Returns how many were sent.

    Each row is sent on its own: a task name no worker knows (renamed in a deploy) is
    logged and kept without holding up the others, and the broker failing again stops
    the run with what was sent so far deleted."""
    cutoff = timezone.now() - timedelta(seconds=settings.TASK_OUTBOX_GRACE_SECONDS)
    known = list(current_app.tasks)
    for name in (
        TaskOutbox.objects.filter(created_at__lt=cutoff)
        .exclude(task__in=known)
        .order_by()
        .values_list("task", flat=True)
        .distinct()
    ):
        logger.error("outbox task %s is not registered; kept", name)
    sent = 0
    while True:
        with transaction.atomic():
            rows = list(
                TaskOutbox.objects.select_for_update(skip_locked=True)
                .filter(created_at__lt=cutoff, task__in=known)
                .order_by("pk")[:batch]
            )
            done, broker_down = [], False
            for row in rows:
                try:
                    task_named(row.task).apply_async(kwargs=row.kwargs, retry=False)
                except broker_errors():  # down again: the next run goes on
                    logger.warning("outbox relay stopped: broker unreachable", exc_info=True)
                    broker_down = True
                    break
                done.append(row.pk)
            TaskOutbox.objects.filter(pk__in=done).delete()
        sent += len(done)
        if broker_down or not done or len(rows) < batch:
            return sent
