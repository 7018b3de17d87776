"""A chargeback that reopens a paid-off loan whose phone was released: the loan leaves the
restriction ladder (it cannot enforce a stage on a phone set free for good), says so to
agents and to the customer, and waits in a work queue."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.errors import ManualLockNotAllowed
from apps.collections.models import Loan, LoanStageChange
from apps.collections.selectors import WorkQueue, loan_overview, loan_work_queue
from apps.collections.services import (
    loan_manual_lock_request,
    loan_stage_sweep,
    payment_record,
    payment_reverse,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.models import DeviceState
from apps.devices.services import device_ack
from apps.lenders.selectors import lender_local_date
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


def released_then_charged_back(lender):
    device, _, _ = enrolled_phone(lender, signed_at=timezone.now() - timedelta(days=75))
    loan = device.loan
    owed = sum(i.total_due for i in loan.installments.all())
    payment_record(
        loan_id=loan.pk,
        amount=Money(owed, lender.currency),
        channel="provider",
        provider="demo",
        provider_ref="all",
        received_at=timezone.now(),
        actor=Actor.system(),
    )
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )
    payment_reverse(
        loan_id=loan.pk,
        kind="chargeback",
        amount=Money(owed, lender.currency),
        provider="demo",
        provider_ref="cb",
        payment_provider_ref="all",
        received_at=timezone.now(),
        actor=Actor.system(),
    )
    loan.refresh_from_db()
    return device, loan


def test_a_chargeback_after_release_leaves_the_loan_off_the_ladder(lender_a) -> None:
    device, loan = released_then_charged_back(lender_a)
    assert loan.status == Loan.Status.ACTIVE
    assert loan.collateral_released_at is not None
    states = DeviceState.objects.filter(device=device).count()
    today = lender_local_date(lender=lender_a)
    for on in (today, today + timedelta(days=40)):
        loan_stage_sweep(lender_id=lender_a.pk, business_date=on, id_from=0, id_to=10**12)
    loan.refresh_from_db()
    assert loan.stage == "none"
    assert not LoanStageChange.objects.filter(loan=loan, cause="sweep").exists()
    assert DeviceState.objects.filter(device=device).count() == states
    event = AuditEvent.objects.get(action="collections.loan.released_with_arrears")
    assert event.target_id == str(loan.pk)
    assert loan_overview(loan=loan).next_stage == ""


def test_the_work_queue_lists_released_loans_with_arrears(lender_a) -> None:
    _device, loan = released_then_charged_back(lender_a)
    queue = loan_work_queue(
        Loan.objects.all(),
        queue=WorkQueue.RELEASED_WITH_ARREARS,
        today=lender_local_date(lender=lender_a),
    )
    assert list(queue) == [loan]


def test_a_released_loan_cannot_be_locked_by_hand(lender_a, make_agent) -> None:
    _device, loan = released_then_charged_back(lender_a)
    with pytest.raises(ManualLockNotAllowed):
        loan_manual_lock_request(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            user=make_agent(lender_a),
            actor=Actor.system(),
            reason="Chargeback.",
        )


def test_agents_and_the_customer_are_told_the_loan_is_released_with_arrears(
    lender_a, make_agent, verified_client, admin_prefix
) -> None:
    from apps.devices.selectors import phone_sync_for_loan
    from apps.selfservice.wording import next_words, phone_words

    _device, loan = released_then_charged_back(lender_a)
    client = verified_client(make_agent(lender_a))
    listing = client.get(f"{admin_prefix}collections/loan/?queue=released_with_arrears")
    assert loan.reference in listing.content.decode()
    assert "Released with arrears" in listing.content.decode()
    page = client.get(f"{admin_prefix}collections/loan/{loan.pk}/change/").content.decode()
    assert "can no longer be restricted" in page
    assert 'id="act-lock"' not in page
    overview = loan_overview(loan=loan)
    words = phone_words(overview, phone_sync_for_loan(loan_id=loan.pk, lender_id=lender_a.pk))
    assert words.startswith("The phone is yours: it was released when the loan was paid off")
    assert "Money is owed on this loan again" in words
    assert "lock" not in next_words(overview)


def test_the_sweep_brings_a_released_loan_still_claiming_a_stage_to_none(lender_a) -> None:
    device, loan = released_then_charged_back(lender_a)
    Loan.objects.filter(pk=loan.pk).update(stage="lock")  # as the old sweep left such loans
    states = DeviceState.objects.filter(device=device).count()
    today = lender_local_date(lender=lender_a)
    loan_stage_sweep(lender_id=lender_a.pk, business_date=today, id_from=0, id_to=10**12)
    loan.refresh_from_db()
    assert loan.stage == "none"
    change = LoanStageChange.objects.get(loan=loan, from_stage="lock")
    assert (change.to_stage, change.cause) == ("none", "payoff")
    assert AuditEvent.objects.filter(
        action="collections.loan.stage_changed", target_id=str(loan.pk), data__stage__old="lock"
    ).exists()
    assert DeviceState.objects.filter(device=device).count() == states  # the phone is free
