"""Create or update the beat schedule in django-celery-beat's tables. Safe to run twice."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.core.schedule import periodic_tasks_sync
from apps.lenders.selectors import lender_clock_list


class Command(BaseCommand):
    help = "Create or update the periodic tasks that beat runs (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, task, created in periodic_tasks_sync(lenders=lender_clock_list()):
            self.stdout.write(f"{'created' if created else 'updated'}: {name} -> {task}")
