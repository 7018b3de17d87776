"""The database itself refuses to change or remove an audit event."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent
from tests.audit.factories import audit_event_for, tamper

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET reason = 'edited' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
        "TRUNCATE audit_auditevent CASCADE",
    ],
)
def test_database_refuses(statement, lender_a) -> None:
    event = audit_event_for(lender_a)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [event.pk] if "%s" in statement else [])
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_orm_update_and_delete_are_refused(lender_a) -> None:
    event = audit_event_for(lender_a)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="x.y.z")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_edit_with_trigger_disabled_is_named_by_verify_audit(lender_a, lender_b, capsys) -> None:
    """A database superuser can switch the trigger off; the hash chain still catches the edit."""
    events = [audit_event_for(lender_a, amount=str(i)) for i in range(5)]
    audit_event_for(lender_b)
    tamper(
        """UPDATE audit_auditevent SET data = '{"amount": "999"}'::jsonb WHERE id = %s""",
        [events[2].pk],
    )

    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit")
    assert excinfo.value.returncode == 1
    out = capsys.readouterr().out
    assert (
        f"BROKEN  lender-a: first broken link at seq 3 (event id {events[2].pk}): "
        "stored hash does not match the event's contents"
    ) in out
    assert "OK      lender-b: 1 events" in out
