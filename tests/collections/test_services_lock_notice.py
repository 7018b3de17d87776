"""Notice before a lock: a stage that blocks apps or locks applies only once the customer was
sent a notice naming it and its date at least the country's notice days earlier (Kenya: 3),
through a channel that confirmed it (the phone acknowledged it, or the SMS provider accepted
it); until then the loan waits at the ladder's highest step below it, and the notice goes out."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.collections.models import Loan
from apps.collections.selectors import loan_overview
from apps.collections.services import loan_stage_sweep
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification
from apps.notifications.services import notifications_dispatch
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db
NAIROBI = ZoneInfo("Africa/Nairobi")
MONDAY = datetime(2026, 3, 2, 10, tzinfo=NAIROBI)  # a working day, inside contact hours


def at(day: int):
    """The clock on day ``day`` after MONDAY, at 10:00 in Nairobi."""
    return time_machine.travel(MONDAY + timedelta(days=day), tick=False)


def sweep_and_send(lender, capture) -> None:
    """The morning: the sweep, its notices' tasks after commit, and the dispatcher."""
    with capture(execute=True):
        loan_stage_sweep(
            lender_id=lender.pk,
            business_date=lender_local_date(lender=lender),
            id_from=0,
            id_to=10**12,
        )
    notifications_dispatch()


def late_loan(lender, days: int) -> Loan:
    """An enrolled phone (no push address: notices go by SMS) whose first installment is
    ``days`` days late on MONDAY."""
    with time_machine.travel(MONDAY - timedelta(days=days + 31), tick=False):
        device, _, _ = enrolled_phone(lender)
    loan = device.loan
    first = loan.installments.order_by("sequence").first()
    assert (MONDAY.date() - first.due_date).days == days
    return loan


def test_a_lock_waits_for_its_confirmed_notice_and_applies_three_days_after_it(
    lender_a, django_capture_on_commit_callbacks, sms_outbox
) -> None:
    loan = late_loan(lender_a, days=40)  # the ladder says lock (day 30): never told
    with at(0):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
    loan.refresh_from_db()
    assert loan.stage == "alarm"  # the ladder's highest step that needs no notice
    notice = Notification.objects.get(loan=loan)  # the raise's notice tells of the lock
    assert (notice.announces_stage, notice.announces_on, notice.status) == (
        "lock",
        MONDAY.date() + timedelta(days=3),
        "sms",
    )
    assert "the phone will lock" in sms_outbox[-1][1]
    assert "5 March 2026" in sms_outbox[-1][1]  # the date it names
    with at(2):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
    loan.refresh_from_db()
    assert loan.stage == "alarm"  # confirmed two days ago: not yet
    assert Notification.objects.filter(loan=loan).count() == 1  # none sent twice
    with at(3):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
    loan.refresh_from_db()
    assert loan.stage == "lock"


def test_a_notice_no_channel_confirmed_lets_nothing_apply(
    lender_a, django_capture_on_commit_callbacks
) -> None:
    from tests.fakes.sms import FakeSmsGateway

    loan = late_loan(lender_a, days=40)
    FakeSmsGateway.down = True  # the provider refuses every SMS
    for day in (0, 3, 6):
        with at(day):
            sweep_and_send(lender_a, django_capture_on_commit_callbacks)
    loan.refresh_from_db()
    assert loan.stage == "alarm"
    notice = Notification.objects.get(loan=loan, announces_stage="lock")
    assert (notice.status, notice.sent_at) == ("scheduled", None)  # tried again each run


def test_a_notice_of_an_earlier_spell_of_lateness_does_not_count(
    lender_a, django_capture_on_commit_callbacks
) -> None:
    from apps.collections.services import payment_record
    from apps.core.actor import Actor
    from apps.core.money import Money

    loan = late_loan(lender_a, days=40)
    with at(0):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
    with at(4):  # told of the lock on day 0; the customer pays all that is due
        due = [i for i in loan.installments.all() if i.due_date <= MONDAY.date()]
        payment_record(
            loan_id=loan.pk,
            amount=Money(sum(i.total_due for i in due), loan.currency),
            channel="manual",
            provider="manual",
            provider_ref="p1",
            received_at=MONDAY + timedelta(days=4),
            actor=Actor.system(),
            reason="Cash.",
        )
    loan.refresh_from_db()
    assert loan.stage == "none"
    following = loan.installments.filter(paid_at__isnull=True).order_by("sequence").first()
    days = 35  # the next installment 35 days late: the ladder says lock again
    with time_machine.travel(
        datetime.combine(following.due_date + timedelta(days=days), MONDAY.timetz()), tick=False
    ):
        with django_capture_on_commit_callbacks(execute=True):
            loan_stage_sweep(
                lender_id=lender_a.pk,
                business_date=lender_local_date(lender=lender_a),
                id_from=0,
                id_to=10**12,
            )
        loan.refresh_from_db()
        assert loan.stage == "alarm"  # the old notice was about the arrears paid since
        assert Notification.objects.filter(loan=loan, announces_stage="lock").count() == 2


def test_a_raise_tells_the_block_coming_and_its_date_and_the_page_agrees(
    lender_a, django_capture_on_commit_callbacks
) -> None:
    loan = late_loan(lender_a, days=9)  # alarm since day 7; blocked apps at day 14
    with at(0):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
        loan.refresh_from_db()
        assert loan.stage == "alarm"
        told = Notification.objects.get(loan=loan, kind="overdue")
        block_on = MONDAY.date() + timedelta(days=5)  # the ladder's day 14, past 3 days' notice
        assert (told.announces_stage, told.announces_on) == ("block_apps", block_on)
        overview = loan_overview(loan=loan)
        assert (overview.next_stage, overview.next_stage_on) == ("block_apps", block_on)
    with at(5):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
    loan.refresh_from_db()
    assert loan.stage == "block_apps"


def test_a_notice_never_sent_is_sent_by_the_next_sweep(
    lender_a, django_capture_on_commit_callbacks, sms_outbox
) -> None:
    loan = late_loan(lender_a, days=40)
    with at(0), django_capture_on_commit_callbacks(execute=True):
        loan_stage_sweep(
            lender_id=lender_a.pk, business_date=MONDAY.date(), id_from=0, id_to=10**12
        )
    # over the weekly contact limit: logged, never sent
    Notification.objects.filter(loan=loan).update(status=Notification.Status.SUPPRESSED)
    with at(1):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)  # a second run: no second
    notice = Notification.objects.get(loan=loan, kind="notice")
    assert (notice.announces_stage, notice.announces_on, notice.status) == (
        "lock",
        MONDAY.date() + timedelta(days=4),
        "sms",
    )
    assert sms_outbox[-1][1].startswith("Your installment is 41 days late.")
    for day in (4, 5):
        with at(day):
            sweep_and_send(lender_a, django_capture_on_commit_callbacks)
        loan.refresh_from_db()
        assert loan.stage == "lock"


def test_a_phone_held_for_its_notice_does_not_lock_itself_offline(
    lender_a, django_capture_on_commit_callbacks
) -> None:
    """Its offline fallback (applied when its lease ends without a check-in) is no harsher
    than what the notices allow."""
    from apps.devices.models import DeviceState
    from tests.fakes.sms import FakeSmsGateway

    loan = late_loan(lender_a, days=40)
    FakeSmsGateway.down = True  # the notice of the lock never reaches the customer
    with at(0):
        sweep_and_send(lender_a, django_capture_on_commit_callbacks)
    state = DeviceState.objects.filter(device__loan=loan).order_by("-version").first()
    assert (state.level, state.document["fallback_level"]) == ("alarm", "alarm")
