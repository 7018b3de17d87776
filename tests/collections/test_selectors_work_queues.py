"""The loan list's work queues, checked against loans whose answers are worked
out here from their installments, not by the selector under test."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from apps.collections.models import Loan
from apps.collections.selectors import WorkQueue, loan_outstanding, loan_work_queue
from apps.collections.services import loan_promise_record, loan_stage_sweep, payment_reverse
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.services import device_event_report, device_state_set
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed, signed_loan
from tests.collections.work_queues import pay
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db
LOCK_DAY = 30  # the standard ladder (tests/lenders/factories.py)


def sweep(lender, on):
    loan_stage_sweep(lender_id=lender.pk, business_date=on, id_from=0, id_to=10**12)


def loans_signed(lender, days_ago: list[int]) -> list[Loan]:
    return [
        enrolled_phone(lender, signed_at=timezone.now() - timedelta(days=d))[0].loan
        for d in days_ago
    ]


def queue(lender, name: str, today) -> set[int]:
    return set(
        loan_work_queue(Loan.objects.filter(lender=lender), queue=name, today=today).values_list(
            "pk", flat=True
        )
    )


def test_lock_tomorrow_lists_the_loans_tomorrows_sweep_would_lock(lender_a) -> None:
    today = lender_local_date(lender=lender_a)
    loans = loans_signed(lender_a, [57, 58, 59, 60, 61, 62, 63, 20])
    (unnoticed,) = loans_signed(lender_a, [60])  # never told of the lock: it waits for its notice
    for loan in loans:
        noticed(loan)
    sweep(lender_a, today)
    late_by = {loan.pk: (today - loan.installments.get(sequence=1).due_date).days for loan in loans}
    expected = {pk for pk, days in late_by.items() if days + 1 >= LOCK_DAY and days < LOCK_DAY}
    assert expected, late_by  # the fixture has loans one day from the lock
    unnoticed_days = (today - unnoticed.installments.get(sequence=1).due_date).days
    assert unnoticed_days + 1 >= LOCK_DAY > unnoticed_days  # as late, but not told
    paused = Loan.objects.get(pk=min(expected))
    loan_promise_record(
        loan_id=paused.pk,
        lender_id=lender_a.pk,
        until=today + timedelta(days=3),
        actor=Actor.system(),
        reason="Pays on Friday.",
    )
    assert queue(lender_a, WorkQueue.LOCK_TOMORROW, today) == expected - {paused.pk}
    assert not Loan.objects.filter(pk__in=expected, stage="lock").exists()
    sweep(lender_a, today + timedelta(days=1))  # tomorrow comes: exactly those lock
    newly_locked = set(
        Loan.objects.filter(pk__in=late_by, stage="lock").values_list("pk", flat=True)
    )
    assert newly_locked >= expected - {paused.pk}
    assert paused.pk not in newly_locked
    unnoticed.refresh_from_db()
    assert unnoticed.stage != "lock"


def test_promises_due_today_and_broken_promises(lender_a) -> None:
    today = lender_local_date(lender=lender_a)
    due, broken, other = loans_signed(lender_a, [50, 50, 50])
    for loan, until in ((due, today), (broken, today), (other, today + timedelta(days=4))):
        loan_promise_record(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            until=until,
            actor=Actor.system(),
            reason="Promised on the phone.",
        )
    assert queue(lender_a, WorkQueue.PROMISES_DUE, today) == {due.pk, broken.pk}
    assert queue(lender_a, WorkQueue.PROMISES_BROKEN, today) == set()
    tomorrow = today + timedelta(days=1)
    sweep(lender_a, tomorrow)  # the promises that ended today were not kept
    assert queue(lender_a, WorkQueue.PROMISES_BROKEN, tomorrow) == {due.pk, broken.pk}
    assert queue(lender_a, WorkQueue.PROMISES_DUE, tomorrow) == set()


def test_phones_out_of_sync_and_sim_changes(lender_a) -> None:
    behind, fresh, swapped = (enrolled_phone(lender_a)[0] for _ in range(3))
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        device_state_set(
            device_id=behind.pk, level="wallpaper", actor=Actor.system(), reason="Test."
        )
    device_state_set(device_id=fresh.pk, level="wallpaper", actor=Actor.system(), reason="Test.")
    with transaction.atomic():
        device_event_report(
            device_id=swapped.pk,
            event_id="e-1",
            kind="sim_changed",
            occurred_at=timezone.now(),
            detail={},
            actor=Actor.system(),
        )
    today = lender_local_date(lender=lender_a)
    assert queue(lender_a, WorkQueue.OUT_OF_SYNC, today) == {behind.loan_id}
    assert queue(lender_a, WorkQueue.SIM_CHANGED, today) == {swapped.loan_id}


def credit_over_an_installment(loan: Loan) -> bool:
    """Worked out from the rows: money in, less what reverses it, less what the installments
    took, against the loan's largest scheduled installment (late fees aside)."""
    installments = list(loan.installments.all())
    reversed_by_ref: dict[tuple[str, str], Decimal] = {}
    for reversal in loan.reversals.all():
        key = (reversal.provider, reversal.payment_provider_ref)
        reversed_by_ref[key] = reversed_by_ref.get(key, Decimal(0)) + reversal.amount
    received = sum(
        max(Decimal(0), p.amount - reversed_by_ref.get((p.provider, p.provider_ref), Decimal(0)))
        for p in loan.payments.all()
    )
    credit = received - sum(i.total_paid for i in installments)
    largest = max(i.principal_amount + i.interest_amount + i.fee_amount for i in installments)
    return credit > largest


def test_credits_over_one_installment_are_listed_for_review(lender_a, lender_b) -> None:
    loans = [signed_loan(lender_a, price="3500", down="500", installments=3) for _ in range(5)]
    overpaid, a_little_over, refunded, ahead, paid_off = loans
    one = overpaid.installments.get(sequence=1).total_due
    owed = {loan.pk: loan_outstanding(loan=loan).amount for loan in loans}
    pay(overpaid, owed[overpaid.pk] + 2 * one, "MP-1")
    pay(a_little_over, owed[a_little_over.pk] + one / 2, "MP-2")
    pay(refunded, owed[refunded.pk] + 2 * one, "MP-3")
    payment_reverse(
        loan_id=refunded.pk,
        kind="refund",
        amount=Money(2 * one, "KES"),
        provider="demo",
        provider_ref="RF-3",
        payment_provider_ref="MP-3",
        received_at=timezone.now(),
        actor=Actor.system(),
    )
    pay(ahead, 2 * one, "MP-4")  # two installments ahead of time: no credit
    pay(paid_off, owed[paid_off.pk], "MP-5")
    theirs = signed_loan(lender_b, price="3500", down="500", installments=3)
    pay(theirs, loan_outstanding(loan=theirs).amount * 3, "MP-6")
    today = lender_local_date(lender=lender_a)
    expected = {loan.pk for loan in loans if credit_over_an_installment(loan)}
    assert expected == {overpaid.pk}
    assert queue(lender_a, WorkQueue.CREDIT_TO_REVIEW, today) == expected
    overpaid.refresh_from_db()
    assert overpaid.status == Loan.Status.PAID_OFF  # the money is kept, as a credit


def test_approvals_waiting_lists_the_loans_with_a_request_to_decide(lender_a) -> None:
    from apps.collections.services import loan_hardship_request

    today = lender_local_date(lender=lender_a)
    asked, _other = loans_signed(lender_a, [20, 20])
    loan_hardship_request(
        loan_id=asked.pk,
        lender_id=lender_a.pk,
        until=today + timedelta(days=10),
        actor=Actor.system(),
        reason="Lost her job.",
    )
    assert queue(lender_a, WorkQueue.APPROVALS, today) == {asked.pk}
