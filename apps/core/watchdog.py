"""A Celery worker that stopped taking tasks ends itself, for its supervisor to start again.

After the Redis broker goes away and comes back, a worker can reconnect and yet never take
another task from its queues, with no error logged (celery/celery#8030, #9054, #10205 and
#10302, through Celery 5.6). Its process stays up, so a supervisor that watches processes
sees nothing wrong, and tasks wait until someone notices.

The watchdog is a thread in each worker (the consumer's own loop may be the part that is
stuck). Every ``WORKER_WATCHDOG_SECONDS`` it looks at the queues the worker was started on:
when tasks waited in them at two checks in a row while the worker held none, ran none and
took none in between, the worker is stalled. It says so in the log, and stops the worker
(a warm shutdown; a hard exit if that does not end it), so the process supervisor
(systemd ``Restart=always``, a container's restart policy) starts a fresh one. Nothing is
lost: tasks are acknowledged only after they ran (``acks_late``), so whatever the worker
held goes back to its queue.

Off for a broker other than Redis, and when ``WORKER_WATCHDOG_SECONDS`` is 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from celery import bootsteps
from celery.worker import state

logger = logging.getLogger(__name__)

# a warm shutdown that has not ended the process after this long is made a hard exit
HARD_EXIT_AFTER_SECONDS = 30
STALLED_EXIT_CODE = 75  # EX_TEMPFAIL: try again


@dataclass(frozen=True, slots=True)
class Look:
    """One check: tasks waiting in the worker's queues, tasks it has taken in all (ever),
    and tasks it holds now (running, or reserved: prefetched, or waiting for their ETA)."""

    waiting: int
    taken: int
    holding: int


def stalled(before: Look, now: Look) -> bool:
    """Whether the worker stalled between two checks: tasks waited at both, it held none
    at either, and it took none in between."""
    return (
        before.waiting > 0
        and now.waiting > 0
        and before.holding == 0
        and now.holding == 0
        and now.taken == before.taken
    )


def _look(count_waiting: Callable[[], int]) -> Look:
    return Look(
        waiting=count_waiting(),
        taken=state.all_total_count[0] + len(state.reserved_requests),
        holding=len(state.active_requests) + len(state.reserved_requests),
    )


def _redis_waiting(url: str, queues: Sequence[str]) -> Callable[[], int]:
    import redis  # the Redis broker's own client, already installed with it

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def count() -> int:
        try:
            return sum(int(client.llen(queue)) for queue in queues)
        except redis.RedisError:  # the broker away: nothing to say about the worker
            return 0

    return count


def _stop() -> None:
    logger.error(
        "worker stalled: tasks wait in its queues and it takes none; stopping it for its "
        "supervisor to start a fresh one"
    )
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(HARD_EXIT_AFTER_SECONDS)
    os._exit(STALLED_EXIT_CODE)


def watch(
    count_waiting: Callable[[], int],
    every: float,
    *,
    stop: Callable[[], None] = _stop,
    done: threading.Event,
) -> None:
    """Check every ``every`` seconds until ``done``; ``stop`` the worker once stalled."""
    before = _look(count_waiting)
    while not done.wait(every):
        now = _look(count_waiting)
        if stalled(before, now):
            stop()
            return
        before = now


class Watchdog(bootsteps.StartStopStep):
    """The consumer's step that runs ``watch`` in a daemon thread (config/celery.py adds it)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.thread: threading.Thread | None = None
        self.done = threading.Event()

    def start(self, parent: Any) -> None:
        from django.conf import settings

        every = settings.WORKER_WATCHDOG_SECONDS
        url = parent.app.conf.broker_url or ""
        if self.thread is not None or not every or not url.startswith(("redis://", "rediss://")):
            return  # started once per process: the consumer restarts on each reconnect
        queues = sorted(parent.app.amqp.queues.consume_from)
        self.thread = threading.Thread(
            target=watch,
            args=(_redis_waiting(url, queues), every),
            kwargs={"done": self.done},
            name="worker-watchdog",
            daemon=True,
        )
        self.thread.start()

    def shutdown(self, parent: Any) -> None:
        self.done.set()
