"""Never restrict wrongly: properties over random loans, payments, promises and dates.

Each example plays a loan through a random sequence of days, sweeps,
payments and promises (the clock moved with time-machine, so the sweep, the
payment and the pause all see the same business date) and, after every step,
checks the rules against an oracle written here from the policy's terms,
not from the engine's code.
"""

import contextlib
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from apps.collections.errors import NothingOverdue, PauseAlreadyOpen
from apps.collections.models import Loan, LoanPause, LoanStageChange
from apps.collections.services import loan_promise_record, loan_stage_sweep, payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.models import DeviceState
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification
from apps.notifications.services import notifications_dispatch
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import LenderFactory

pytestmark = pytest.mark.django_db

ORDER = ["none", "reminder", "wallpaper", "alarm", "block_apps", "lock"]
LADDER = [(1, "reminder"), (3, "wallpaper"), (7, "alarm"), (14, "block_apps"), (30, "lock")]
FORBIDDEN = {"KE": set(), "IN": {"lock"}}
START = datetime(2026, 1, 5, 10, 0, tzinfo=ZoneInfo("Africa/Nairobi"))
NOTICE_DAYS = 3  # Kenya's and India's rule


def noticed_rank(loan: Loan, today, since) -> int:
    """The harshest stage the customer was told of (a notice naming it and a date by today),
    confirmed by the phone or the SMS provider at least NOTICE_DAYS local days before today,
    sent since ``since`` (the oldest unpaid due date); 0 if none."""
    tz = ZoneInfo(loan.lender.timezone)
    ranks = [0]
    for notice in Notification.objects.filter(loan=loan).exclude(announces_stage=""):
        confirmed = notice.acked_at or notice.sent_at
        if (
            confirmed is not None
            and notice.announces_on <= today
            and (today - confirmed.astimezone(tz).date()).days >= NOTICE_DAYS
            and notice.created_at.astimezone(tz).date() >= since
        ):
            ranks.append(ORDER.index(notice.announces_stage))
    return max(ranks)


def owed_stage(loan: Loan, today, country: str) -> str:
    """The oracle: the stage the loan's arrears deserve today under the policy and country,
    and the notices the customer was given."""
    if loan.status != Loan.Status.ACTIVE or loan.collateral_released_at is not None:
        return "none"  # paid off, or reopened after its phone was released for good
    unpaid = [i.due_date for i in loan.installments.all() if i.paid_at is None]
    late_by = (today - min(unpaid)).days if unpaid else 0
    days = late_by if late_by > loan.grace_days else 0
    told = noticed_rank(loan, today, min(unpaid)) if unpaid else 0
    stage = "none"
    for threshold, step in LADDER:
        needs_notice = step in ("block_apps", "lock") and ORDER.index(step) > told
        if days and days >= threshold and step not in FORBIDDEN[country] and not needs_notice:
            stage = step
    paused = LoanPause.objects.filter(
        loan=loan, status="active", starts_on__lte=today, ends_on__gte=today
    ).exists()
    if paused and ORDER.index(stage) > ORDER.index("reminder"):
        stage = "reminder"
    return stage


step = st.tuples(
    st.integers(min_value=0, max_value=12),  # days to move on
    st.sampled_from(["sweep", "sweep", "sweep", "pay", "pay_all", "promise", "sweep_twice"]),
    st.integers(min_value=5, max_value=150),  # percent of one installment, for "pay"
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    country=st.sampled_from(["KE", "IN"]),
    steps=st.lists(step, min_size=2, max_size=14),
    start_late=st.integers(min_value=0, max_value=60),
)
def test_the_engine_never_restricts_wrongly(
    country, steps, start_late, django_capture_on_commit_callbacks
) -> None:
    sid = transaction.savepoint()
    try:
        _play(country, steps, start_late, django_capture_on_commit_callbacks)
    finally:
        transaction.savepoint_rollback(sid)


def _play(country: str, steps, start_late: int, capture) -> None:
    now = START
    with time_machine.travel(now - timedelta(days=30 + start_late), tick=False):
        lender = LenderFactory(country=country, slug=f"p-{country.lower()}")
        device, _, _ = enrolled_phone(lender)
    loan = device.loan
    paid_refs = 0
    for days, action, percent in steps:
        now += timedelta(days=days)
        with time_machine.travel(now, tick=False):
            today = lender_local_date(lender=lender)
            before = loan.stage
            if action in ("sweep", "sweep_twice"):
                with capture(execute=True):  # its notices' tasks, after commit
                    loan_stage_sweep(
                        lender_id=lender.pk, business_date=today, id_from=0, id_to=10**12
                    )
                notifications_dispatch()  # by SMS (no push address), inside contact hours
                loan.refresh_from_db()
                swept_today_before = LoanStageChange.objects.filter(
                    loan=loan, cause="sweep", business_date=today
                ).count()
                if action == "sweep_twice":
                    snapshot = (
                        loan.stage,
                        DeviceState.objects.count(),
                        LoanStageChange.objects.count(),
                    )
                    loan_stage_sweep(
                        lender_id=lender.pk, business_date=today, id_from=0, id_to=10**12
                    )
                    loan.refresh_from_db()
                    assert snapshot == (
                        loan.stage,
                        DeviceState.objects.count(),
                        LoanStageChange.objects.count(),
                    )
                if swept_today_before <= 1 and loan.status == Loan.Status.ACTIVE:
                    # a sweep brings the loan up to what it owes (unless lowered today already)
                    assert ORDER.index(loan.stage) >= ORDER.index(before)
            elif action in ("pay", "pay_all") and loan.status in (Loan.Status.ACTIVE,):
                open_ = [i for i in loan.installments.order_by("sequence") if i.paid_at is None]
                owed = sum((i.total_due - i.total_paid for i in open_), Decimal(0))
                amount = (
                    owed
                    if action == "pay_all"
                    else min(owed, (open_[0].total_due * percent / 100).quantize(Decimal("0.01")))
                )
                if amount > 0:
                    paid_refs += 1
                    payment_record(
                        loan_id=loan.pk,
                        amount=Money(amount, lender.currency),
                        channel="manual",
                        provider="manual",
                        provider_ref=f"h-{paid_refs}",
                        received_at=now,
                        actor=Actor.system(),
                        reason="Paid.",
                    )
                loan.refresh_from_db()
                assert ORDER.index(loan.stage) <= ORDER.index(before)  # a payment never raises
            elif action == "promise":
                with contextlib.suppress(NothingOverdue, PauseAlreadyOpen):
                    loan_promise_record(
                        loan_id=loan.pk,
                        lender_id=lender.pk,
                        until=today + timedelta(days=3),
                        actor=Actor.system(),
                        reason="Friday.",
                    )
                loan.refresh_from_db()
                assert ORDER.index(loan.stage) <= ORDER.index(before)  # a pause never raises
            _check(loan, today, country)


def _check(loan: Loan, today, country: str) -> None:
    owed = owed_stage(loan, today, country)
    event(f"stage reached: {loan.stage}")  # --hypothesis-show-statistics: the ladder is walked
    # never restricted beyond what is owed today: current, paid off and paused loans included
    assert ORDER.index(loan.stage) <= ORDER.index(owed), (loan.stage, owed)
    assert loan.stage not in FORBIDDEN[country]
    if loan.status == Loan.Status.PAID_OFF:
        assert loan.stage == "none"
        assert (
            DeviceState.objects.filter(device__loan=loan).order_by("-version").first().level
            == "released"
        )
    for change in LoanStageChange.objects.filter(loan=loan):
        up = ORDER.index(change.to_stage) > ORDER.index(change.from_stage)
        assert up == (change.cause == "sweep"), (change.cause, change.from_stage, change.to_stage)
        if change.to_stage == "lock":
            assert change.days_overdue >= 30
    # the phone is told exactly the loan's stage (or released)
    newest = DeviceState.objects.filter(device__loan=loan).order_by("-version").first()
    expected_level = (
        "released"
        if loan.status == Loan.Status.PAID_OFF
        else ("normal" if loan.stage == "none" else loan.stage)
    )
    assert newest.level == expected_level
