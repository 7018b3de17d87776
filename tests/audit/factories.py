from django.db import transaction

from apps.audit.models import AuditEvent
from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.lenders.models import Lender


def audit_event_for(
    lender: Lender | None, action: str = "tests.thing.happened", **data: object
) -> AuditEvent:
    """An event appended through the real service (the only way in)."""
    with transaction.atomic():
        return audit_event_record(
            actor=Actor.system(), action=action, lender_id=lender.pk if lender else None, data=data
        )


def tamper(sql: str, params: list[object]) -> None:
    """Run ``sql`` against the audit table with its user triggers off, as a DBA could."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks, or ALTER refuses
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
