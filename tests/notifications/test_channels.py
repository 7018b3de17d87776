"""The phone channel devices installs for notifications (apps/notifications/channels.py)."""

import pytest

from apps.devices.selectors import device_ids_pushable_for_loans
from apps.devices.services import push_nudges_current_enqueue
from apps.notifications import channels
from config.celery import app


def test_devices_installs_the_phone_channel() -> None:
    channel = channels.phone_channel()
    assert channel.pushable is device_ids_pushable_for_loans
    assert channel.nudge is push_nudges_current_enqueue


def test_without_a_channel_no_phone_can_be_pushed() -> None:
    empty = channels.PhoneChannel()
    assert empty.pushable(loan_ids={1, 2}) == {}
    assert empty.nudge(device_ids=[1]) is None


@pytest.mark.parametrize(
    "name", ["notifications.reminders_queue", "notifications.payment_receipt_queue"]
)
def test_the_tasks_keep_their_names(name: str) -> None:
    assert name in app.tasks
