"""The audit recorder's port: apps below ``audit`` still write their events in the same
transaction as their change (apps/core/audit.py)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.accounts.services import user_password_set
from apps.audit.models import AuditEvent
from apps.audit.services import AuditEventRecorder, AuditOutsideTransaction
from apps.core import audit
from apps.core.actor import Actor
from apps.lenders.models import Lender
from apps.lenders.services import lender_create
from tests.accounts.factories import UserFactory
from tests.lenders.factories import LenderFactory

pytestmark = pytest.mark.django_db

KENYA = {
    "name": "Port Credit",
    "slug": "port",
    "country": "KE",
    "currency": "KES",
    "timezone": "Africa/Nairobi",
    "locale": "en",
}


class Boom(Exception):
    pass


def _then_fail(change) -> None:
    """Run ``change`` in a transaction that then fails."""
    with transaction.atomic():
        change()
        raise Boom


def test_the_audit_app_installs_its_recorder() -> None:
    assert isinstance(audit._recorder, AuditEventRecorder)


def test_event_commits_with_the_change_when_a_lower_app_records_it() -> None:
    with transaction.atomic():
        lender = lender_create(**KENYA, actor=Actor.system())
        # visible inside the transaction that made the change
        assert AuditEvent.objects.filter(
            action="lenders.lender.created", lender_id=lender.pk
        ).exists()
    assert AuditEvent.objects.get(action="lenders.lender.created").target_id == str(lender.pk)


def test_event_rolls_back_with_the_change_when_a_lower_app_records_it() -> None:
    with pytest.raises(Boom):
        _then_fail(lambda: lender_create(**KENYA, actor=Actor.system()))
    assert not Lender.objects.filter(slug="port").exists()
    assert not AuditEvent.objects.filter(action="lenders.lender.created").exists()


def test_accounts_event_goes_on_the_lender_given_and_rolls_back_with_the_password() -> None:
    lender = LenderFactory()
    user = UserFactory()
    old_password = user.password
    with pytest.raises(Boom):
        _then_fail(
            lambda: user_password_set(
                user=user,
                password="a long new passphrase 7",
                lender_id=lender.pk,
                actor=Actor.system(),
            )
        )
    user.refresh_from_db()
    assert user.password == old_password
    assert not AuditEvent.objects.filter(action="accounts.user.password_changed").exists()

    user_password_set(
        user=user, password="a long new passphrase 7", lender_id=lender.pk, actor=Actor.system()
    )
    event = AuditEvent.objects.get(action="accounts.user.password_changed")
    assert (event.lender_id, event.target_id) == (lender.pk, str(user.pk))


@pytest.mark.django_db(transaction=True)
def test_recording_through_the_port_outside_a_transaction_is_refused() -> None:
    with pytest.raises(AuditOutsideTransaction):
        audit.audit_record(actor=Actor.system(), action="test.outside")


def test_recorded_since_matches_action_time_target_and_data() -> None:
    since = timezone.now() - timedelta(minutes=1)
    with transaction.atomic():
        audit.audit_record(actor=Actor.system(), action="test.port", data={"who": "a"})
    assert audit.audit_recorded_since(action="test.port", since=since, data={"who": "a"})
    assert not audit.audit_recorded_since(action="test.port", since=since, data={"who": "b"})
    assert not audit.audit_recorded_since(action="test.port", since=since, target_id="1")
    assert not audit.audit_recorded_since(action="test.other", since=since)
    later = timezone.now() + timedelta(minutes=1)
    assert not audit.audit_recorded_since(action="test.port", since=later)
