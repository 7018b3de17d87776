"""A phone left behind its newest state is recorded once per state (device.out_of_sync)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.selectors import public_event_list
from apps.core.actor import Actor
from apps.devices.services import device_ack, device_state_set, devices_out_of_sync_record
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


def behind(device, *, level: str) -> None:
    """The phone is told a new state an hour and more ago, and has not taken it."""
    with time_machine.travel(timezone.now() - timedelta(minutes=61)):
        device_state_set(device_id=device.pk, level=level, actor=Actor.system(), reason="Test.")


def test_a_phone_behind_for_an_hour_is_recorded_once_per_state(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    device_ack(device_id=device.pk, version=1, error_code="", actor=Actor.system())
    other, _, _ = enrolled_phone(lender_a)  # behind only since enrollment: a minute, not an hour
    behind(device, level="reminder")

    assert devices_out_of_sync_record() == 1
    assert devices_out_of_sync_record() == 0  # the same state: recorded already

    event = AuditEvent.objects.get(action="devices.device.out_of_sync")
    assert event.target_id == str(device.pk)
    assert event.data["loan_id"] == device.loan_id
    assert (event.data["desired_version"], event.data["acked_version"]) == (2, 1)
    [public] = public_event_list(lender_id=lender_a.pk, types=["device.out_of_sync"]).events
    assert public.payload["data"] == {
        "loan_id": device.loan_id,
        "device_id": device.pk,
        "desired_version": 2,
        "acked_version": 1,
        "behind_since": event.data["behind_since"],
    }
    del other

    behind(device, level="wallpaper")  # a later state it did not take either
    assert devices_out_of_sync_record() == 1


def test_a_phone_that_took_its_state_is_not_recorded(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    behind(device, level="reminder")
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )

    assert devices_out_of_sync_record() == 0
