"""The restriction engine: the sweep raises, payments, pauses and payoff lower or release."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.errors import (
    NothingOverdue,
    PauseAlreadyOpen,
    PauseTooLong,
    SupervisorRequired,
)
from apps.collections.models import Loan, LoanPause, LoanStageChange
from apps.collections.services import (
    loan_hardship_request,
    loan_pause_decide,
    loan_promise_record,
    payment_record,
)
from apps.core.actor import Actor
from apps.core.models import TaskOutbox
from apps.core.money import Money
from apps.devices.errors import DeviceReleased
from apps.devices.models import Device, DeviceState, PushNudge
from apps.devices.services import device_ack, device_state_set
from apps.lenders.models import Lender, Membership
from tests.collections.factories import noticed
from tests.collections.sweeps import newest_state, phone_on_loan, sweep, today

pytestmark = pytest.mark.django_db

# the standard ladder (tests/lenders/factories.py) for days overdue past grace
LADDER = [(1, "reminder"), (3, "wallpaper"), (7, "alarm"), (14, "block_apps"), (30, "lock")]


def expected(days: int) -> str:
    return next((stage for threshold, stage in reversed(LADDER) if days >= threshold), "none")


def first_due(loan: Loan) -> date:
    return loan.installments.order_by("sequence").first().due_date


@pytest.mark.parametrize("late_by", [3, 4, 6, 10, 16, 29, 33, 60])
def test_the_sweep_raises_a_loan_to_its_stage_and_tells_the_phone(lender_a, late_by) -> None:
    device, loan = phone_on_loan(lender_a)
    on = first_due(loan) + timedelta(days=late_by)
    days = late_by if late_by > loan.grace_days else 0
    report = sweep(loan, on)
    loan.refresh_from_db()
    assert loan.stage == expected(days)
    if expected(days) == "none":
        assert report.changes == 0
        return
    change = LoanStageChange.objects.get(loan=loan)
    assert (
        change.from_stage,
        change.to_stage,
        change.cause,
        change.days_overdue,
        change.business_date,
    ) == ("none", expected(days), "sweep", days, on)
    state = newest_state(device)
    assert (state.level, state.version, change.device_version) == (expected(days), 2, 2)
    document = state.document
    assert ("social" in document["blocked_categories"]) == (days >= 14)
    assert bool(document["alarm_times"]) == (days >= 7)
    assert bool(document["lock_screen_text"]) == (days >= 30)
    assert bool(document["wallpaper_text"]) == (days >= 3)
    assert "com.android.phone" in document["always_allowed_packages"]  # emergency calls work
    assert PushNudge.objects.filter(device=device, version=2, status="pending").exists()
    event = AuditEvent.objects.get(action="collections.loan.stage_changed")
    assert event.data["stage"] == {"old": "none", "new": expected(days)}
    assert event.data["days_overdue"] == days


def test_a_second_sweep_the_same_day_changes_and_sends_nothing(
    lender_a, django_capture_on_commit_callbacks
) -> None:
    _device, loan = phone_on_loan(lender_a)
    on = first_due(loan) + timedelta(days=20)
    assert sweep(loan, on).changes == 1
    counts = (
        LoanStageChange.objects.count(),
        DeviceState.objects.count(),
        PushNudge.objects.count(),
        AuditEvent.objects.count(),
        TaskOutbox.objects.count(),
    )
    with django_capture_on_commit_callbacks() as after_commit:
        assert sweep(loan, on).changes == 0
    assert after_commit == []  # no push, no notices task: nothing is queued twice
    assert counts == (
        LoanStageChange.objects.count(),
        DeviceState.objects.count(),
        PushNudge.objects.count(),
        AuditEvent.objects.count(),
        TaskOutbox.objects.count(),
    )
    assert sweep(loan, on + timedelta(days=15)).changes == 1  # day 35: lock, the next morning on
    loan.refresh_from_db()
    assert loan.stage == "lock"


def test_a_payment_lowers_the_stage_at_once_and_the_phone_is_told(lender_a) -> None:
    device, loan = phone_on_loan(lender_a, days_ago=75)  # two installments overdue
    noticed(loan, sequence=2)  # told again once the second fell due
    sweep(loan, today(lender_a))
    loan.refresh_from_db()
    assert loan.stage == "lock"
    first, second = loan.installments.order_by("sequence")[:2]
    payment_record(
        loan_id=loan.pk,
        amount=Money(first.total_due, lender_a.currency),
        channel="manual",
        provider="manual",
        provider_ref="p-1",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Cash at the shop.",
    )
    loan.refresh_from_db()
    late_by = (today(lender_a) - second.due_date).days
    assert loan.stage == expected(late_by if late_by > loan.grace_days else 0)
    assert loan.stage not in ("lock", "none")
    state = newest_state(device)
    assert state.level == loan.stage
    assert LoanStageChange.objects.filter(loan=loan, cause="payment").count() == 1
    assert PushNudge.objects.filter(device=device, version=state.version).exists()


def test_payoff_releases_the_phone_for_good(lender_a) -> None:
    device, loan = phone_on_loan(lender_a, days_ago=75)
    sweep(loan, today(lender_a))
    outstanding = sum(i.total_due for i in loan.installments.all())
    payment_record(
        loan_id=loan.pk,
        amount=Money(outstanding, lender_a.currency),
        channel="manual",
        provider="manual",
        provider_ref="p-all",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Paid in full.",
    )
    loan.refresh_from_db()
    assert (loan.status, loan.stage) == (Loan.Status.PAID_OFF, "none")
    state = newest_state(device)
    assert state.level == "released"
    with pytest.raises(DeviceReleased):  # told it is free: nothing may follow, even before the ack
        device_state_set(device_id=device.pk, level="lock", actor=Actor.system(), reason="Try.")
    device_ack(device_id=device.pk, version=state.version, error_code="", actor=Actor.system())
    device.refresh_from_db()
    assert device.status == Device.Status.RELEASED
    with pytest.raises(DeviceReleased):
        device_state_set(device_id=device.pk, level="lock", actor=Actor.system(), reason="Try.")
    assert AuditEvent.objects.filter(action="devices.state.refused").count() == 2


def test_a_promise_keeps_the_loan_at_reminder_and_a_broken_one_reenters_the_ladder(
    lender_a,
) -> None:
    device, loan = phone_on_loan(lender_a, days_ago=75)
    now = today(lender_a)
    sweep(loan, now)
    loan_promise_record(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        until=now + timedelta(days=5),
        actor=Actor.system(),
        reason="Salary on Friday.",
    )
    loan.refresh_from_db()
    assert loan.stage == "reminder"  # lowered at once
    assert newest_state(device).level == "reminder"
    for day in range(1, 6):  # the promise holds: no escalation
        assert sweep(loan, now + timedelta(days=day)).changes == 0
    report = sweep(loan, now + timedelta(days=6))  # not paid: broken, back on the ladder
    assert (report.pauses_closed, report.changes) == (1, 1)
    loan.refresh_from_db()
    assert loan.stage == "lock"
    assert LoanPause.objects.get(loan=loan).status == "broken"


def test_promises_are_bounded_single_and_only_for_arrears(lender_a) -> None:
    _, current = phone_on_loan(lender_a)
    now = today(lender_a)
    with pytest.raises(NothingOverdue):
        loan_promise_record(
            loan_id=current.pk,
            lender_id=lender_a.pk,
            until=now,
            actor=Actor.system(),
            reason="Nothing due.",
        )
    _, loan = phone_on_loan(lender_a, days_ago=45)
    with pytest.raises(PauseTooLong):
        loan_promise_record(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            until=now + timedelta(days=15),
            actor=Actor.system(),
            reason="Later.",
        )
    loan_promise_record(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        until=now + timedelta(days=3),
        actor=Actor.system(),
        reason="Friday.",
    )
    with pytest.raises(PauseAlreadyOpen):
        loan_promise_record(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            until=now + timedelta(days=3),
            actor=Actor.system(),
            reason="Again.",
        )


def test_a_hardship_pause_waits_for_a_supervisor(lender_a, make_agent) -> None:
    _device, loan = phone_on_loan(lender_a, days_ago=75)
    sweep(loan, today(lender_a))
    pause = loan_hardship_request(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        until=today(lender_a) + timedelta(days=30),
        actor=Actor.system(),
        reason="Hospital stay.",
    )
    loan.refresh_from_db()
    assert loan.stage == "lock"  # requested only: nothing changes yet
    agent = make_agent(lender_a)
    with pytest.raises(SupervisorRequired):
        loan_pause_decide(
            pause_id=pause.pk,
            lender_id=lender_a.pk,
            approve=True,
            user=agent,
            reason="OK",
            actor=Actor.system(),
        )
    supervisor = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    loan_pause_decide(
        pause_id=pause.pk,
        lender_id=lender_a.pk,
        approve=True,
        user=supervisor,
        reason="Documents seen.",
        actor=Actor.system(),
    )
    loan.refresh_from_db()
    assert loan.stage == "reminder"
    assert sweep(loan, today(lender_a) + timedelta(days=1)).changes == 0


def test_a_stage_the_country_forbids_is_never_applied(lender_a) -> None:
    device, loan = phone_on_loan(lender_a, days_ago=75)
    Lender.objects.filter(pk=lender_a.pk).update(country="IN")  # the rules changed after signing
    sweep(loan, today(lender_a))
    loan.refresh_from_db()
    assert loan.stage == "block_apps"
    assert newest_state(device).level == "block_apps"


def test_a_request_whose_end_has_passed_cannot_be_approved(lender_a, make_agent) -> None:
    import time_machine

    from apps.collections.errors import PauseNotOpen

    _, loan = phone_on_loan(lender_a, days_ago=75)
    with time_machine.travel(timezone.now() - timedelta(days=3)):  # asked for 3 days ago, for a day
        pause = loan_hardship_request(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            until=today(lender_a),
            actor=Actor.system(),
            reason="Flood.",
        )
    supervisor = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    with pytest.raises(PauseNotOpen):
        loan_pause_decide(
            pause_id=pause.pk,
            lender_id=lender_a.pk,
            approve=True,
            user=supervisor,
            reason="Late.",
            actor=Actor.system(),
        )
    assert LoanPause.objects.get(pk=pause.pk).status == "requested"


def test_ranges_of_one_loan_each_cover_every_loan_and_an_empty_range_is_refused(lender_a) -> None:
    from apps.collections.services import loan_sweep_ranges

    loans = sorted(phone_on_loan(lender_a)[1].pk for _ in range(3))
    ranges = loan_sweep_ranges(lender_id=lender_a.pk, size=1)
    assert [lo for lo, _ in ranges] == loans  # one range per loan, none missed
    assert loan_sweep_ranges(lender_id=lender_a.pk, size=2)[0][0] == loans[0]
    with pytest.raises(ValueError, match="at least one loan"):
        loan_sweep_ranges(lender_id=lender_a.pk, size=0)
