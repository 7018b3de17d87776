"""The worker watchdog: a worker that takes no task while tasks wait in its queues ends itself."""

import os
import subprocess
import sys
import threading
import time

import pytest

from apps.core.watchdog import Look, stalled, watch
from tests.waiting import wait_for
from tools.bench._server import RedisServer, celery_worker_command
from tools.bench._setup import ROOT

IDLE = Look(waiting=3, taken=10, holding=0)


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        (IDLE, IDLE, True),  # tasks waited at both checks, none held, none taken
        (IDLE, Look(waiting=3, taken=11, holding=0), False),  # it took one in between
        (IDLE, Look(waiting=0, taken=10, holding=0), False),  # the queue emptied (another took it)
        (Look(waiting=0, taken=10, holding=0), IDLE, False),  # tasks only just arrived
        (IDLE, Look(waiting=3, taken=10, holding=1), False),  # busy with a task, or one with an ETA
        (Look(waiting=3, taken=10, holding=1), IDLE, False),
    ],
)
def test_a_worker_is_stalled_only_when_tasks_waited_at_two_checks_and_it_took_none(
    before, now, expected
) -> None:
    assert stalled(before, now) is expected


def test_the_watch_stops_a_stalled_worker_once_and_a_working_one_never() -> None:
    stops: list[str] = []
    done = threading.Event()
    waiting = iter([2, 2, 2, 2])
    watcher = threading.Thread(
        target=watch,
        args=(lambda: next(waiting, 0), 0.01),
        kwargs={"stop": lambda: stops.append("stop"), "done": done},
    )
    watcher.start()
    watcher.join(timeout=5)
    assert stops == ["stop"]  # and the watch ended with it

    stops.clear()
    empty = threading.Thread(
        target=watch,
        args=(lambda: 0, 0.01),
        kwargs={"stop": lambda: stops.append("stop"), "done": done},
    )
    empty.start()
    time.sleep(0.2)
    done.set()
    empty.join(timeout=5)
    assert stops == []
    assert not empty.is_alive()


# what an operator's shell would run: a bare Celery client on the broker (this process's own
# app answers to the suite's CELERY_BROKER_URL, which overrides any other broker it is given)
CONTROL = """
import sys
from celery import Celery
client = Celery(broker=sys.argv[1])
if sys.argv[2] == "cancel_consumer":
    print(client.control.cancel_consumer("default", destination=["watched@run"], reply=True, timeout=1))
else:
    client.send_task("core.task_outbox_relay", queue="default", routing_key="default")
"""


def _control(url: str, command: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_"))}
    done = subprocess.run(
        [sys.executable, "-c", CONTROL, url, command],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


@pytest.mark.broker
def test_a_real_worker_that_stops_consuming_its_queue_ends_itself(tmp_path) -> None:
    """A worker told to stop consuming its queue (what a consumer stalled after an outage
    does, without being told) ends within two checks once a task waits there, and says why;
    the task stays queued for the worker its supervisor starts."""
    broker = RedisServer(tmp_path)
    broker.start()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "CELERY_BROKER_URL": broker.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "WORKER_WATCHDOG_SECONDS": "1",
    }
    with log.open("ab") as out:
        worker = subprocess.Popen(
            celery_worker_command("watched", queues="default", loglevel="INFO"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        wait_for(lambda: "'ok'" in _control(broker.url, "cancel_consumer"), timeout=60)
        time.sleep(3)  # two checks with nothing waiting: no stall
        assert worker.poll() is None
        _control(broker.url, "send_task")
        wait_for(lambda: worker.poll() is not None, timeout=30)
        assert "worker stalled" in log.read_text(errors="replace")
        assert broker.queued() == 1  # still there for the next worker
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        broker.stop()
