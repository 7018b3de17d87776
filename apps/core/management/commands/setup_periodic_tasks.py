"""Create or update the beat schedule in django-celery-beat's tables. Safe to run twice."""

import json
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

# name -> (task, crontab fields, timezone, queue). Per-lender sweeps join this
# table when the restriction engine lands; each entry names its timezone.
SCHEDULE: dict[str, tuple[str, dict[str, str], str, str]] = {
    "audit: daily chain checkpoint": (
        "audit.audit_chain_checkpoint_record",
        {"minute": "15", "hour": "2"},
        "UTC",
        "default",
    ),
    # The outbox's safety net: nudges whose relay task was lost or is due to retry.
    "devices: push relay": ("devices.push_relay", {}, "UTC", "push"),
    # Idempotent per installment; the per-lender local-morning sweep replaces
    # this fixed time when the restriction engine lands.
    "collections: daily late fees": (
        "collections.installment_late_fees_assess_all",
        {"minute": "0", "hour": "3"},
        "UTC",
        "sweep",
    ),
}


class Command(BaseCommand):
    help = "Create or update the periodic tasks that beat runs (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for name, (task, fields, tz, queue) in SCHEDULE.items():
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
                defaults={"task": task, "crontab": crontab, "queue": queue, "kwargs": json.dumps({}),
                          "enabled": True},
            )  # fmt: skip
            self.stdout.write(f"{'created' if created else 'updated'}: {name} -> {task}")
