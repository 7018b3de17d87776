"""The task outbox: a task asked for by a transaction survives a broker that is down."""

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.models import TaskOutbox
from apps.core.money import Money
from apps.core.outbox import task_enqueue_on_commit, task_outbox_relay, tasks_enqueue_on_commit
from apps.notifications.models import Notification
from config.celery import app
from tests.collections.factories import signed_loan
from tools.bench._server import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def pay(loan, ref: str):
    return payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal("100.00"), loan.currency),
        channel="manual",
        provider="manual",
        provider_ref=ref,
        received_at=timezone.now(),
        actor=Actor.system(),
    )


@pytest.fixture
def broker_down():
    """The app's broker is a closed port, for real: publishing fails."""
    port = free_port()  # free now, and nobody listens on it
    saved = (app.conf.broker_write_url, app.conf.task_always_eager)
    app.conf.broker_write_url, app.conf.task_always_eager = f"redis://127.0.0.1:{port}/0", False
    app._pool, app.amqp._producer_pool = None, None  # the next send connects to the new URL
    yield
    app.conf.broker_write_url, app.conf.task_always_eager = saved
    app._pool, app.amqp._producer_pool = None, None


def test_a_receipt_asked_for_while_the_broker_is_down_is_sent_by_the_relay(
    lender_a, broker_down
) -> None:
    loan = signed_loan(lender_a)
    payment = pay(loan, "MP-1").payment  # commits; the send after commit fails
    kept = TaskOutbox.objects.get()
    assert (kept.task, kept.kwargs) == (
        "notifications.payment_receipt_queue",
        {"payment_id": payment.pk},
    )
    assert not Notification.objects.filter(loan=loan, kind="payment").exists()

    app.conf.task_always_eager = True  # the broker is back (tasks now run in this process)
    assert task_outbox_relay() == 0  # within the grace period: its own send may still be under way
    TaskOutbox.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert task_outbox_relay() == 1
    assert Notification.objects.filter(loan=loan, kind="payment").count() == 1
    assert not TaskOutbox.objects.exists()


def test_a_task_sent_after_commit_leaves_nothing_in_the_outbox(lender_a) -> None:
    loan = signed_loan(lender_a)
    pay(loan, "MP-1")
    assert Notification.objects.filter(loan=loan, kind="payment").count() == 1
    assert not TaskOutbox.objects.exists()


def test_a_task_no_worker_knows_is_kept_without_holding_up_the_others(
    lender_a, broker_down, caplog
) -> None:
    TaskOutbox.objects.create(task="collections.renamed_in_a_deploy", kwargs={})  # the oldest
    loan = signed_loan(lender_a)
    pay(loan, "MP-1")  # its receipt's send fails: kept for the relay
    assert not Notification.objects.filter(loan=loan, kind="payment").exists()
    app.conf.task_always_eager = True  # the broker is back
    TaskOutbox.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    # one row a batch: the unknown, oldest row must not stop the relay at the first batch
    assert task_outbox_relay(batch=1) == 1
    assert Notification.objects.filter(loan=loan, kind="payment").count() == 1
    assert list(TaskOutbox.objects.values_list("task", flat=True)) == [
        "collections.renamed_in_a_deploy"
    ]
    assert "collections.renamed_in_a_deploy is not registered" in caplog.text


@app.task(name="tests.core.failing")
def failing() -> None:
    raise RuntimeError("a bug in the task")


def test_a_task_that_fails_is_not_taken_for_a_broker_down() -> None:
    """Tasks run in place here (eager): a task's own error reaches the caller, instead of
    being logged as a broker outage and left for the relay."""
    with pytest.raises(RuntimeError, match="a bug in the task"), transaction.atomic():
        task_enqueue_on_commit("tests.core.failing")


def test_a_task_name_no_worker_knows_is_refused_when_enqueued() -> None:
    """Services name their tasks; a misspelt name fails in the service, not in the relay."""
    with pytest.raises(KeyError, match=r"collections\.no_such_task"), transaction.atomic():
        task_enqueue_on_commit("collections.no_such_task", lender_id=1)
    assert not TaskOutbox.objects.exists()


def test_a_fan_out_is_written_at_once_and_a_broker_down_keeps_every_task(
    lender_a, broker_down
) -> None:
    from apps.collections.services import loan_sweep_fan_out

    for _ in range(3):
        signed_loan(lender_a)
    assert loan_sweep_fan_out(lender_id=lender_a.pk, size=1) == 3
    kept = sorted(TaskOutbox.objects.values_list("task", flat=True))
    assert kept == ["collections.loan_stage_sweep_range"] * 3 + ["notifications.reminders_queue"]

    app.conf.task_always_eager = True  # the broker is back
    TaskOutbox.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert task_outbox_relay() == 4
    assert not TaskOutbox.objects.exists()


def test_a_fan_out_sent_after_commit_leaves_nothing_in_the_outbox(lender_a) -> None:
    from apps.collections.services import loan_sweep_fan_out

    for _ in range(3):
        signed_loan(lender_a)
    assert loan_sweep_fan_out(lender_id=lender_a.pk, size=1) == 3
    assert not TaskOutbox.objects.exists()


FIRST_LOOKUPS_AT_ONCE = """
import threading

import django

django.setup()
from apps.core.outbox import task_named

barrier, errors = threading.Barrier(8), []


def look_up():
    barrier.wait()
    try:
        task_named("devices.push_relay")
    except Exception as exc:
        errors.append(repr(exc))


threads = [threading.Thread(target=look_up) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
"""


@pytest.mark.django_db(transaction=False)
def test_threads_that_first_name_a_task_at_once_all_find_it() -> None:
    """A fresh web process has imported no tasks module: eight threads naming a task at
    once (phones enrolling side by side) each get it. Without the lock around the import,
    most of them found the registry half filled."""
    ran = subprocess.run(
        [sys.executable, "-c", FIRST_LOOKUPS_AT_ONCE],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_a_fan_out_to_nobody_writes_and_sends_nothing(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks_enqueue_on_commit("collections.loan_stage_sweep_range", [])
    assert callbacks == []
    assert not TaskOutbox.objects.exists()
