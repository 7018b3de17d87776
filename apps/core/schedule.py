"""The beat schedule, written into django-celery-beat's tables. Safe to run twice."""

import json
from typing import Any

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
    # Messages held to contact hours, and SMS for notices the phone did not ack.
    "notifications: dispatch": ("notifications.notifications_dispatch", {}, "UTC", "notify"),
    # A release is pushed until the phone acks it.
    "devices: release re-push": ("devices.push_release_renudge", {"minute": "*/5"}, "UTC", "push"),
    # Idempotent per installment; the per-lender local-morning sweep replaces
    # this fixed time when the restriction engine lands.
    "collections: daily late fees": (
        "collections.installment_late_fees_assess_all",
        {"minute": "0", "hour": "3"},
        "UTC",
        "sweep",
    ),
}


def schedule() -> dict[str, tuple[str, dict[str, str], str, str, dict[str, Any]]]:
    """The fixed entries, then one restriction sweep per lender at its local morning."""
    from django.conf import settings

    from apps.lenders.models import Lender

    entries = {name: (*entry, {}) for name, entry in SCHEDULE.items()}
    for lender_id, slug, tz in Lender.objects.values_list("pk", "slug", "timezone"):
        entries[f"collections: restriction sweep {slug}"] = (
            "collections.loan_stage_sweep_lender",
            {"minute": "0", "hour": str(settings.SWEEP_LOCAL_HOUR)},
            tz,
            "sweep",
            {"lender_id": lender_id},
        )
    return entries


@transaction.atomic
def periodic_tasks_sync() -> list[tuple[str, str, bool]]:
    """Create or update every entry; returns (name, task, created) for each."""
    written = []
    for name, (task, fields, tz, queue, kwargs) in schedule().items():
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
            defaults={"task": task, "crontab": crontab, "queue": queue, "kwargs": json.dumps(kwargs),
                      "enabled": True},
        )  # fmt: skip
        written.append((name, task, created))
    return written
