import json
import time

import pytest
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.audit.models import AuditEvent
from apps.audit.tasks import audit_chain_checkpoint_record_task as checkpoint_task
from config.celery import app


def test_tasks_are_acknowledged_late_and_routed_by_kind() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert {q.name for q in app.conf.task_queues} == {
        "sweep",
        "push",
        "notify",
        "webhooks",
        "default",
    }
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    route = app.amqp.router.route({}, checkpoint_task.name)
    assert route["queue"].name == "default"
    assert checkpoint_task.ignore_result is True


@pytest.mark.django_db
def test_setup_periodic_tasks_is_idempotent() -> None:
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(task="audit.audit_chain_checkpoint_record")
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == (
        "2",
        "15",
        "UTC",
    )
    assert PeriodicTask.objects.filter(task="audit.audit_chain_checkpoint_record").count() == 1


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_sent_through_redis_and_a_second_run_changes_nothing(
    redis_worker, lender_a
) -> None:
    checkpoint_task.delay()
    checkpoint_task.delay()  # beat firing twice: the task is idempotent per day
    with app.connection_for_write() as conn:
        redis = conn.default_channel.client
        deadline = time.monotonic() + 30
        # both deliveries consumed and acknowledged (acks_late keeps a message in
        # "unacked" until its task has finished)
        while time.monotonic() < deadline and (redis.llen("default") or redis.hlen("unacked")):
            time.sleep(0.05)
        assert (redis.llen("default"), redis.hlen("unacked")) == (0, 0)
    assert AuditEvent.objects.filter(action="audit.chain.checkpointed").count() == 1


@pytest.mark.django_db
def test_each_lender_gets_its_sweep_at_its_own_local_morning(lender_a, lender_b) -> None:
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    sweeps = PeriodicTask.objects.filter(task="collections.loan_stage_sweep_lender")
    found = {
        (json.loads(t.kwargs)["lender_id"], t.crontab.hour, str(t.crontab.timezone), t.queue)
        for t in sweeps
    }
    assert found == {
        (lender_a.pk, "8", lender_a.timezone, "sweep"),
        (lender_b.pk, "8", "America/Mexico_City", "sweep"),
    }


@pytest.mark.django_db
def test_each_lender_gets_its_late_fees_just_after_its_own_business_day_ends(
    lender_a, lender_b
) -> None:
    three_utc = CrontabSchedule.objects.create(minute="0", hour="3", timezone="UTC")
    PeriodicTask.objects.create(
        name="collections: daily late fees",
        crontab=three_utc,
        task="collections.installment_late_fees_assess_all",
    )  # the old one
    call_command("setup_periodic_tasks")
    call_command("setup_periodic_tasks")
    runs = PeriodicTask.objects.filter(task="collections.installment_late_fees_assess")
    found = {
        (
            json.loads(t.kwargs)["lender_id"],
            t.crontab.hour,
            t.crontab.minute,
            str(t.crontab.timezone),
            t.queue,
        )
        for t in runs
    }
    assert found == {
        (lender_a.pk, "0", "5", "Africa/Nairobi", "sweep"),
        (lender_b.pk, "0", "5", "America/Mexico_City", "sweep"),
    }
    assert not PeriodicTask.objects.filter(name="collections: daily late fees").exists()
