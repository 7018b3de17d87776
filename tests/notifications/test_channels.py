"""The phone channel devices installs for notifications (apps/notifications/channels.py)."""

import importlib.util
import sys

import pytest

from apps.core.outbox import task_named
from apps.devices.selectors import device_ids_pushable_for_loans
from apps.devices.services import push_nudges_current_enqueue
from apps.notifications import channels


def test_devices_installs_the_phone_channel() -> None:
    channel = channels.phone_channel()
    assert channel.pushable is device_ids_pushable_for_loans
    assert channel.nudge is push_nudges_current_enqueue


def test_without_a_channel_delivery_refuses_rather_than_falling_back_to_sms() -> None:
    """A process whose devices app did not install the channel (a misconfiguration) fails
    loudly instead of sending every notice by SMS: a fresh copy of the module, as such a
    process has it."""
    spec = importlib.util.spec_from_file_location("fresh_channels", channels.__file__)
    fresh = importlib.util.module_from_spec(spec)
    sys.modules["fresh_channels"] = fresh  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(fresh)
    finally:
        del sys.modules["fresh_channels"]
    with pytest.raises(fresh.PhoneChannelMissing, match=r"apps\.devices"):
        fresh.phone_channel()


@pytest.mark.parametrize(
    "name", ["notifications.reminders_queue", "notifications.payment_receipt_queue"]
)
def test_the_tasks_keep_their_names(name: str) -> None:
    """Rows of a deployed outbox and beat's entries name these tasks."""
    assert task_named(name).name == name
