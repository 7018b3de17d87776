"""The beat schedule, written into django-celery-beat's tables. Safe to run twice."""

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

# name -> (task, crontab fields, timezone, queue); schedule() adds one sweep per lender.
SCHEDULE: dict[str, tuple[str, dict[str, str], str, str]] = {
    "audit: daily chain checkpoint": (
        "audit.audit_chain_checkpoint_record",
        {"minute": "15", "hour": "2"},
        "UTC",
        "default",
    ),
    # The outbox's safety net: nudges whose relay task was lost or is due to retry.
    "devices: push relay": ("devices.push_relay", {}, "UTC", "push"),
    # Tasks a transaction asked for whose send failed (the broker was down).
    "core: task outbox relay": ("core.task_outbox_relay", {}, "UTC", "default"),
    # The stored answers to idempotent API POSTs, kept a day (apps/core/idempotency.py).
    "core: idempotency answers purge": (
        "core.idempotency_records_purge",
        {"minute": "7"},
        "UTC",
        "default",
    ),
    # Messages held to contact hours, and SMS for notices the phone did not ack.
    "notifications: dispatch": ("notifications.notifications_dispatch", {}, "UTC", "notify"),
    # Reminder calls due (held to contact hours), and the retry of one not answered.
    "notifications: voice calls": ("notifications.voice_calls_dispatch", {}, "UTC", "notify"),
    # Unlock codes by SMS for phones that did not take their new state (apps/devices/offline.py).
    "devices: offline codes": ("devices.offline_codes_deliver", {}, "UTC", "push"),
    # Payments started through a provider that nobody called back about (a status query).
    "collections: payment attempts": (
        "collections.payment_attempts_reconcile",
        {},
        "UTC",
        "default",
    ),
    # Yesterday's reconciliation report per lender and provider (yesterday in each lender's
    # timezone, over by then everywhere: at 04:30 UTC it is 22:30 the day before in Mexico).
    "collections: reconciliation reports": (
        "collections.reconciliation_reports_build",
        {"minute": "30", "hour": "4"},
        "UTC",
        "default",
    ),
    # New public events into webhook deliveries, and the deliveries due (retries); a change
    # nudges it at once after commit, this catches what a nudge missed.
    "integrations: webhooks": ("integrations.webhooks_dispatch", {}, "UTC", "webhooks"),
    # Phones behind their newest state for an hour: recorded (and told to the lender).
    "devices: out of sync": (
        "devices.devices_out_of_sync_record",
        {"minute": "*/5"},
        "UTC",
        "default",
    ),
    # A release is pushed until the phone acks it.
    "devices: release re-push": ("devices.push_release_renudge", {"minute": "*/5"}, "UTC", "push"),
}
# Entries of earlier schedules, deleted when the schedule is written: the late fees ran for
# every lender at 03:00 UTC (local midnight in Santiago, mid-morning in Nairobi).
RETIRED = ("collections: daily late fees",)


class LenderClock(NamedTuple):
    """What the schedule needs of a lender: its id, its slug (in entry names) and timezone."""

    id: int
    slug: str
    timezone: str


def schedule(
    *, lenders: Iterable[LenderClock]
) -> dict[str, tuple[str, dict[str, str], str, str, dict[str, Any]]]:
    """The fixed entries, then per lender, in its timezone: the late fees just after its
    business day ends and the restriction sweep at its morning."""
    entries: dict[str, tuple[str, dict[str, str], str, str, dict[str, Any]]] = {
        name: (*entry, {}) for name, entry in SCHEDULE.items()
    }
    fee_hour, fee_minute = (str(int(part)) for part in settings.LATE_FEE_LOCAL_TIME.split(":"))
    for lender_id, slug, tz in lenders:
        entries[f"collections: late fees {slug}"] = (
            "collections.installment_late_fees_assess",
            {"minute": fee_minute, "hour": fee_hour},
            tz,
            "sweep",
            {"lender_id": lender_id},
        )
        entries[f"collections: restriction sweep {slug}"] = (
            "collections.loan_stage_sweep_lender",
            {"minute": "0", "hour": str(settings.SWEEP_LOCAL_HOUR)},
            tz,
            "sweep",
            {"lender_id": lender_id},
        )
    return entries


@transaction.atomic
def periodic_tasks_sync(*, lenders: Iterable[LenderClock]) -> list[tuple[str, str, bool]]:
    """Create or update every entry (per lender: one of each of ``lenders``, every lender
    there is), and delete retired ones; returns (name, task, created) for each entry written."""
    PeriodicTask.objects.filter(name__in=RETIRED).delete()
    written = []
    for name, (task, fields, tz, queue, kwargs) in schedule(lenders=lenders).items():
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=fields.get("minute", "*"),
            hour=fields.get("hour", "*"),
            day_of_week=fields.get("day_of_week", "*"),
            day_of_month=fields.get("day_of_month", "*"),
            month_of_year=fields.get("month_of_year", "*"),
            timezone=tz,
        )
        _, created = PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": task,
                "crontab": crontab,
                "queue": queue,
                "kwargs": json.dumps(kwargs),
                "enabled": True,
            },
        )
        written.append((name, task, created))
    return written
