"""Offline codes under concurrency: deliveries running at once send each code once, and a
resend racing a delivery sends it once more, never twice at once."""

import threading
import time
from datetime import timedelta
from typing import ClassVar

import pytest
import time_machine
from django.utils import timezone

from apps.core.actor import Actor
from apps.devices.models import Device, OfflineToken
from apps.devices.services import offline_code_resend, offline_codes_deliver
from tests.collections.offline import locked_phone, pay_cash
from tests.fakes.sms import FakeSmsGateway
from tests.waiting import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


class SlowSmsGateway(FakeSmsGateway):
    """The fake SMS provider, answering after a pause: deliveries overlap while it thinks. It
    counts the sends of each number in flight at once (``most_at_once``)."""

    in_flight: ClassVar[dict[str, int]] = {}
    most_at_once: ClassVar[int] = 0
    lock = threading.Lock()

    def send(self, *, to: str, body: str) -> str:
        cls = type(self)
        with cls.lock:
            cls.in_flight[to] = cls.in_flight.get(to, 0) + 1
            cls.most_at_once = max(cls.most_at_once, cls.in_flight[to])
        try:
            time.sleep(0.3)
            return super().send(to=to, body=body)
        finally:
            with cls.lock:
                cls.in_flight[to] -= 1


@pytest.fixture(autouse=True)
def slow_sms(settings):
    settings.SMS_GATEWAY_CLASS = "tests.devices.test_races_offline.SlowSmsGateway"
    SlowSmsGateway.in_flight.clear()
    SlowSmsGateway.most_at_once = 0


def errors_at_once(*calls) -> list[Exception]:
    """What the calls raised, run at once (none: an empty list)."""
    return [o for o in run_at_once(*calls) if isinstance(o, Exception)]


def test_deliveries_at_once_send_each_code_once(lender_a, sms_outbox) -> None:
    phones = [locked_phone(lender_a) for _ in range(3)]
    for n, (_device, loan) in enumerate(phones):
        pay_cash(loan, loan.installments.order_by("sequence").first().total_due, ref=f"cash-{n}")
    later = timezone.now() + timedelta(minutes=3)
    with time_machine.travel(later, tick=True):
        assert errors_at_once(*[offline_codes_deliver] * 4) == []
    assert sorted(to for to, _ in sms_outbox) == sorted(loan.customer.phone for _, loan in phones)
    assert SlowSmsGateway.most_at_once == 1
    assert set(OfflineToken.objects.values_list("delivery", flat=True)) == {"sms"}


def test_a_resend_racing_a_delivery_never_sends_the_code_twice_at_once(
    lender_a, sms_outbox
) -> None:
    device, loan = locked_phone(lender_a)
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now())
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    later = timezone.now() + timedelta(minutes=3)
    with time_machine.travel(later, tick=True):
        errors = errors_at_once(
            offline_codes_deliver,
            lambda: offline_code_resend(
                device_id=device.pk, lender_id=lender_a.pk, actor=Actor.system(), reason="Asked."
            ),
        )
        assert errors == []
        offline_codes_deliver()  # whatever the resend left waiting goes now
    # one send at a time for the phone's number, whichever came first; the due SMS and the
    # one asked for at most (a resend taken in by the delivery running goes with it)
    assert SlowSmsGateway.most_at_once == 1
    assert 1 <= len(sms_outbox) <= 2
    assert OfflineToken.objects.get(device=device).delivery == "sms"
