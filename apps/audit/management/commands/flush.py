"""``flush`` that respects the audit trail.

``flush`` empties every table with TRUNCATE, and the audit table refuses
TRUNCATE. Outside tests (``AUDIT_ALLOW_FLUSH``) this command refuses outright:
erasing a database that holds legal evidence is not a maintenance task. The
test runner flushes between transactional tests, so the test settings allow it.
"""

from typing import Any

import pgtrigger
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.flush import Command as FlushCommand


class Command(FlushCommand):
    def handle(self, **options: Any) -> None:
        if not settings.AUDIT_ALLOW_FLUSH:
            raise CommandError(
                "flush would erase the audit trail; refused (AUDIT_ALLOW_FLUSH is off)"
            )
        with pgtrigger.ignore("audit.AuditEvent:audit_event_no_truncate"):
            super().handle(**options)
