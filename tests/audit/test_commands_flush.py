"""The flush command refuses to erase the audit trail outside tests."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apps.audit.models import AuditEvent
from tests.audit.factories import audit_event_for

pytestmark = pytest.mark.django_db


@override_settings(AUDIT_ALLOW_FLUSH=False)
def test_flush_refuses_outside_tests(lender_a) -> None:
    audit_event_for(lender_a)
    with pytest.raises(CommandError, match="erase the audit trail"):
        call_command("flush", interactive=False)
    assert AuditEvent.objects.exists()
