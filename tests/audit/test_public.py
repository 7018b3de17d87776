"""The lender's public events: each type projected from the real action that causes it."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from apps.audit.public import PROJECTIONS, PUBLIC_TYPES
from apps.audit.selectors import public_event_list
from apps.collections.events import CollectionsAction
from apps.collections.services import (
    loan_hardship_request,
    loan_pause_decide,
    payment_record,
    payment_reverse,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.events import DevicesAction
from apps.devices.services import device_ack, device_check_in, device_event_report
from apps.lenders.models import Membership
from tests.collections.sweeps import phone_on_loan, sweep, today

pytestmark = pytest.mark.django_db


def test_every_projected_action_is_one_an_app_records() -> None:
    known = {*map(str, CollectionsAction), *map(str, DevicesAction)}
    assert {p.action for p in PROJECTIONS} <= known


def _ack(device) -> None:
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )


def _life_of_a_loan(lender, make_agent):
    """A sale, an enrollment, acks, a sweep to lock, a SIM change, tampering, a hardship pause
    decided, a payment, its reversal, the payoff and the phone's release."""
    device, loan = phone_on_loan(lender, days_ago=75)
    _ack(device)
    sweep(loan, today(lender))
    _ack(device)
    for iccid in ("a" * 64, "b" * 64):
        device_check_in(
            device_id=device.pk,
            applied_version=device.desired_version,
            agent_version="1.0",
            battery_percent=50,
            iccid_sha256=iccid,
            ip=None,
        )
    device_event_report(
        device_id=device.pk,
        event_id="tamper-1",
        kind="tamper_suspected",
        occurred_at="2026-01-01T00:00:00Z",
        detail={"what": "adb"},
        actor=Actor.system(),
    )
    pause = loan_hardship_request(
        loan_id=loan.pk,
        lender_id=lender.pk,
        until=today(lender) + timedelta(days=10),
        actor=Actor.system(),
        reason="Hospital stay.",
    )
    loan_pause_decide(
        pause_id=pause.pk,
        lender_id=lender.pk,
        approve=False,
        user=make_agent(lender, role=Membership.Role.SUPERVISOR),
        reason="No documents.",
        actor=Actor.system(),
    )
    now = loan.signed_at + timedelta(days=75)
    money = lambda amount: Money(Decimal(amount), loan.currency)  # noqa: E731
    payment_record(
        loan_id=loan.pk,
        amount=money("100"),
        channel="provider",
        provider="demo",
        provider_ref="p-1",
        received_at=now,
        actor=Actor.system(),
    )
    payment_reverse(
        loan_id=loan.pk,
        kind="chargeback",
        amount=money("100"),
        provider="demo",
        provider_ref="r-1",
        payment_provider_ref="p-1",
        received_at=now,
        actor=Actor.system(),
    )
    owed = sum(i.total_due for i in loan.installments.all())
    payment_record(
        loan_id=loan.pk,
        amount=money(owed),
        channel="provider",
        provider="demo",
        provider_ref="p-2",
        received_at=now,
        actor=Actor.system(),
    )
    _ack(device)
    return device, loan


def test_each_change_a_lender_follows_is_a_public_event_in_order(
    lender_a, lender_b, make_agent
) -> None:
    device, loan = _life_of_a_loan(lender_a, make_agent)
    _life_of_a_loan(lender_b, make_agent)

    page = public_event_list(lender_id=lender_a.pk)

    types = [e.type for e in page.events]
    assert types == [
        "loan.signed",
        "device.enrolled",
        "device.state_applied",
        "loan.stage_changed",
        "device.state_applied",
        "device.sim_changed",
        "device.tamper_suspected",
        "pause.decided",
        "payment.applied",
        "payment.reversed",
        "payment.applied",
        "loan.paid_off",
        "loan.stage_changed",  # the payoff lifts the lock
        "device.released",
    ]
    assert set(types) | {"device.out_of_sync"} == set(PUBLIC_TYPES)  # its own test: devices
    seqs = [e.seq for e in page.events]
    assert seqs == sorted(seqs)
    by_type = {e.type: e.payload for e in page.events}
    for event in page.events:  # every one names its loan, none carries more than ids and facts
        assert event.payload["data"]["loan_id"] == loan.pk
        assert event.payload["id"] == event.id
        assert set(event.payload) == {"id", "type", "timestamp", "data"}
        assert len(json.dumps(event.payload)) < 20_000
    assert by_type["loan.signed"]["data"]["reference"] == loan.reference
    assert by_type["device.enrolled"]["data"]["device_id"] == device.pk
    stages = [e.payload["data"]["stage"] for e in page.events if e.type == "loan.stage_changed"]
    assert stages == [{"old": "none", "new": "lock"}, {"old": "lock", "new": "none"}]
    assert by_type["device.tamper_suspected"]["data"]["event_id"] == "tamper-1"
    assert by_type["pause.decided"]["data"]["status"] == "rejected"
    assert by_type["payment.applied"]["data"]["provider_ref"] == "p-2"
    assert by_type["payment.reversed"]["data"]["payment_provider_ref"] == "p-1"
    assert by_type["device.released"]["data"]["device_id"] == device.pk
    text = json.dumps([e.payload for e in page.events])
    customer = loan.customer
    for personal in (customer.phone, customer.full_name, customer.national_id, "adb"):
        assert personal not in text


def test_a_page_moves_the_cursor_and_filters_by_type(lender_a, make_agent) -> None:
    _life_of_a_loan(lender_a, make_agent)
    first = public_event_list(lender_id=lender_a.pk, limit=3)
    assert [e.type for e in first.events] == [
        "loan.signed",
        "device.enrolled",
        "device.state_applied",
    ]
    assert first.cursor == first.events[-1].seq
    rest = public_event_list(lender_id=lender_a.pk, after=first.cursor)
    assert rest.events[0].type == "loan.stage_changed"
    payments = public_event_list(lender_id=lender_a.pk, types=["payment.applied"])
    assert [e.payload["data"]["provider_ref"] for e in payments.events] == ["p-1", "p-2"]
    assert public_event_list(lender_id=lender_a.pk, after=rest.cursor).events == []
