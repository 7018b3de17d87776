"""A phone never rings on a rest day or a public holiday: the signed desired state carries,
for each local date of its lease, the alarm times that may ring that day, and the agent (the
reference simulator) rings only those, in the customer's local time."""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine

from apps.collections.services import loan_stage_sweep
from apps.core.actor import Actor
from apps.devices.services import device_check_in, device_state_set
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import LenderFactory
from tests.lenders.markets import MARKETS, MONDAY, SUNDAY, local
from tools.agent_sim.phone import Phone, StateVerifier, public_key

pytestmark = pytest.mark.django_db

ALARMS = ["09:00", "18:00"]


def phone_with_state(device, lender_key: str, *, now: datetime) -> Phone:
    """The simulator's phone after it checked in, verified the signed state and applied it."""
    signed = device_check_in(
        device_id=device.pk,
        applied_version=0,
        agent_version="sim",
        battery_percent=80,
        iccid_sha256="",
        ip=None,
    ).state
    verifier = StateVerifier(device_id=device.pk, keys={signed.key_version: public_key(lender_key)})
    state = {
        "document": signed.document,
        "signature": signed.signature,
        "key_version": signed.key_version,
    }
    phone = Phone()
    phone.apply(verifier.check(state, applied_version=0, now=now))
    return phone


def lender_in(country: str):
    tz, currency, *_ = MARKETS[country]
    return LenderFactory(country=country, currency=currency, timezone=tz)


def alarms_set(device, key, *, at):
    """At ``at``, the phone is given the alarm stage (ALARMS) and applies the signed state."""
    with time_machine.travel(at, tick=False):
        state = device_state_set(
            device_id=device.pk,
            level="alarm",
            alarm_times=ALARMS,
            actor=Actor.system(),
            reason="Late.",
        )
        return state, phone_with_state(device, key, now=at)


@pytest.mark.parametrize("country", MARKETS)
def test_a_phone_does_not_ring_on_a_sunday_and_rings_on_monday(country) -> None:
    lender = lender_in(country)
    device, _, key = enrolled_phone(lender)
    friday = local(country, SUNDAY - timedelta(days=2), time(10))
    state, phone = alarms_set(device, key, at=friday)
    days = state.document["alarm_days"]
    assert state.document["timezone"] == lender.timezone
    assert days[SUNDAY.isoformat()] == []  # a quiet date
    assert days[MONDAY.isoformat()] == ALARMS
    assert not phone.rings_at(local(country, SUNDAY, time(9)))
    assert phone.rings_at(local(country, MONDAY, time(9)))
    assert phone.rings_at(local(country, MONDAY, time(18)))
    assert not phone.rings_at(local(country, MONDAY, time(9, 1)))  # only at the times set


@pytest.mark.parametrize("country", MARKETS)
def test_a_phone_does_not_ring_on_a_public_holiday(country) -> None:
    lender = lender_in(country)
    device, _, key = enrolled_phone(lender)
    holiday = MARKETS[country][3]
    two_days_before = local(country, holiday - timedelta(days=2), time(10))
    state, phone = alarms_set(device, key, at=two_days_before)
    assert state.document["alarm_days"][holiday.isoformat()] == []
    assert not phone.rings_at(local(country, holiday, time(9)))
    reopens = MARKETS[country][4][0]  # the next open day
    assert phone.rings_at(local(country, reopens, time(9)))


def test_colombia_rings_on_saturday_only_inside_its_shorter_window() -> None:
    lender = lender_in("CO")
    device, _, key = enrolled_phone(lender)
    saturday = SUNDAY - timedelta(days=1)
    with time_machine.travel(local("CO", saturday - timedelta(days=1), time(10)), tick=False):
        state = device_state_set(
            device_id=device.pk,
            level="alarm",
            alarm_times=ALARMS,
            actor=Actor.system(),
            reason="Late.",
        )
        phone = phone_with_state(device, key, now=local("CO", saturday, time(0)))
    assert state.document["alarm_days"][saturday.isoformat()] == ["09:00"]  # 08:00-15:00
    assert phone.rings_at(local("CO", saturday, time(9)))
    assert not phone.rings_at(local("CO", saturday, time(18)))


def test_the_local_date_decides_not_the_utc_date() -> None:
    lender = lender_in("ID")  # UTC+7: 09:00 on Monday 17 Aug (a holiday) is 02:00 UTC
    device, _, key = enrolled_phone(lender)
    with time_machine.travel(datetime(2026, 8, 14, 3, tzinfo=UTC), tick=False):
        device_state_set(
            device_id=device.pk,
            level="alarm",
            alarm_times=ALARMS,
            actor=Actor.system(),
            reason="Late.",
        )
        phone = phone_with_state(device, key, now=datetime(2026, 8, 14, 3, tzinfo=UTC))
    assert not phone.rings_at(datetime(2026, 8, 17, 2, tzinfo=UTC))
    assert phone.rings_at(datetime(2026, 8, 18, 2, tzinfo=UTC))  # 09:00 on Tuesday in Jakarta


def test_the_sweep_gives_a_late_phone_its_quiet_days_and_a_renewed_lease_its_own() -> None:
    lender = lender_in("CO")
    device, _, key = enrolled_phone(lender, signed_at=datetime(2026, 9, 10, 15, tzinfo=UTC))
    first = device.loan.installments.order_by("sequence").first()
    on = first.due_date + timedelta(days=8)  # past the alarm stage (day 7)
    with time_machine.travel(local("CO", on, time(5)), tick=False):
        loan_stage_sweep(lender_id=lender.pk, business_date=on, id_from=0, id_to=10**12)
        phone = phone_with_state(device, key, now=local("CO", on, time(5)))
    assert phone.alarm_times == ALARMS
    sundays = [d for d in phone.alarm_days if datetime.fromisoformat(d).weekday() == 6]
    assert sundays
    assert all(phone.alarm_days[d] == [] for d in sundays)
    # nine days on, the phone comes back: its state is re-issued with this week's days
    later = local("CO", on + timedelta(days=9), time(10))
    with time_machine.travel(later, tick=False):
        renewed = device_check_in(
            device_id=device.pk,
            applied_version=device.desired_version,
            agent_version="sim",
            battery_percent=80,
            iccid_sha256="",
            ip=None,
        ).state
    assert min(renewed.document["alarm_days"]) == later.date().isoformat()
