"""The sweep against a payment and a pause decision running at the same moment."""

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.locks import loan_lock
from apps.collections.models import LoanPause, LoanStageChange
from apps.collections.selectors import loan_next_due
from apps.collections.services import (
    loan_hardship_request,
    loan_pause_decide,
    loan_promise_record,
    loan_stage_sweep,
    payment_record,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.models import DeviceState
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.collections.sweeps import phone_on_loan, sweep, today
from tests.devices.factories import enrolled_phone
from tests.waiting import while_held

pytestmark = pytest.mark.django_db(transaction=True)


def first_due(loan):
    return loan.installments.order_by("sequence").first().due_date


def sweep_while_held(loan, *, on, hold: Callable[[], None], finish: Callable[[], None]) -> list:
    """``hold`` takes the loan's lock in a transaction; once the sweep waits for it, ``finish``
    runs and commits. Returns the errors of both threads."""
    return while_held(
        hold=hold,
        finish=finish,
        act=lambda: loan_stage_sweep(
            lender_id=loan.lender_id, business_date=on, id_from=0, id_to=10**12
        ),
    )


def test_a_sweep_waiting_on_a_payment_does_not_restrict_the_loan_it_made_current(lender_a):
    device, _, _ = enrolled_phone(lender_a)
    loan = device.loan
    due = loan_next_due(loan=loan)

    def pay():
        payment_record(
            loan_id=loan.pk,
            lender_id=loan.lender_id,
            amount=due.amount,
            channel="provider",
            provider="demo",
            provider_ref="p1",
            received_at=timezone.now(),
            actor=Actor.system(),
        )

    errors = sweep_while_held(
        loan, on=first_due(loan) + timedelta(days=5), hold=pay, finish=lambda: None
    )
    assert errors == []
    loan.refresh_from_db()
    # the first installment is paid, and the next falls due after the business date
    assert loan.installments.order_by("sequence").first().paid_at is not None
    assert loan.stage == "none", f"a loan with nothing overdue was raised to {loan.stage}"


def test_a_sweep_waiting_on_a_promise_does_not_escalate_the_paused_loan(lender_a):
    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=75))
    loan = device.loan
    today = lender_local_date(lender=lender_a)

    def promise():
        loan_promise_record(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            until=today + timedelta(days=3),
            actor=Actor.system(),
            reason="Salary on Friday.",
        )

    # the sweep classified the loan for a lock before the promise committed
    errors = sweep_while_held(loan, on=today, hold=promise, finish=lambda: None)
    assert errors == []
    loan.refresh_from_db()
    assert loan.stage == "reminder", f"a loan under a promise was raised to {loan.stage}"


def test_a_sweep_and_a_pause_decision_at_once_do_not_deadlock(lender_a, make_agent):
    device, _, _ = enrolled_phone(lender_a)
    loan = device.loan
    supervisor = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    pause = loan_hardship_request(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        until=lender_local_date(lender=lender_a) + timedelta(days=2),
        actor=Actor.system(),
        reason="Lost job.",
    )
    on = first_due(loan) + timedelta(days=5)
    assert on > pause.ends_on  # the sweep closes this pause

    def decide():
        loan_pause_decide(
            pause_id=pause.pk,
            lender_id=lender_a.pk,
            approve=True,
            user=supervisor,
            reason="Papers seen.",
            actor=Actor.system(),
        )

    errors = sweep_while_held(
        loan, on=on, hold=lambda: loan_lock(loan_id=loan.pk, lender_id=lender_a.pk), finish=decide
    )
    assert errors == []
    # both took effect: the pause was approved, and the sweep, past its end, closed it
    pause.refresh_from_db()
    assert pause.decided_by_id == supervisor.pk
    assert pause.status == LoanPause.Status.ENDED


def test_a_payment_and_a_device_writer_at_once_do_not_deadlock(lender_a):
    """The global lock order is loan, installments, device, audit chain (apps/collections/locks.py).
    A payment that lowers a restricted loan's stage writes the phone's state: it must take the
    phone's lock before the chain's, as every device writer does (a device's own state change,
    the key announcement, the push relay), or the two wait for each other."""
    from apps.devices.locks import device_lock
    from apps.devices.services import device_state_set

    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=75))
    loan = device.loan
    noticed(loan)
    today = lender_local_date(lender=lender_a)
    loan_stage_sweep(lender_id=lender_a.pk, business_date=today, id_from=0, id_to=10**12)
    loan.refresh_from_db()
    assert loan.stage == "lock"
    owed = sum(i.total_due - i.total_paid for i in loan.installments.all())

    def pay():
        payment_record(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            amount=Money(owed, loan.currency),
            channel="provider",
            provider="demo",
            provider_ref="p1",
            received_at=timezone.now(),
            actor=Actor.system(),
        )

    # the phone's row first, then the chain (the global order); the payment waits for the phone
    errors = while_held(
        hold=lambda: device_lock(device_id=device.pk),
        act=pay,
        finish=lambda: device_state_set(
            device_id=device.pk, level="lock", actor=Actor.system(), reason="Re-issued."
        ),
    )
    assert errors == []
    loan.refresh_from_db()
    assert (loan.status, loan.stage) == ("paid_off", "none")


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_raise_each_loan_once(lender_a) -> None:
    loans = [phone_on_loan(lender_a, days_ago=75)[1] for _ in range(5)]
    on = today(lender_a)
    barrier, errors = threading.Barrier(2), []

    def run():
        try:
            barrier.wait()
            sweep(loans[0], on)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert LoanStageChange.objects.filter(cause="sweep").count() == 5
    assert DeviceState.objects.filter(level="lock").count() == 5
    assert Decimal(AuditEvent.objects.filter(action="collections.loan.stage_changed").count()) == 5
