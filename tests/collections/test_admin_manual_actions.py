"""Manual lock under the two-person rule, and a reminder sent again by hand."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import Loan, LoanStageChange, ManualLock
from apps.collections.services import loan_stage_sweep, payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.models import DeviceState
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone, phone_registered

pytestmark = pytest.mark.django_db


def act(loan, action: str) -> str:
    return reverse("admin:collections_loan_act", args=[loan.pk, action])


def decide(loan, ask) -> str:
    return reverse("admin:collections_loan_manual_lock_decide", args=[loan.pk, ask.pk])


def late(lender, days_ago: int = 50, *, swept: bool = True) -> Loan:
    """A loan signed ``days_ago`` days ago (50: its first installment about 20 days late, social
    apps blocked by this morning's sweep)."""
    device, _, _ = enrolled_phone(lender, signed_at=timezone.now() - timedelta(days=days_ago))
    noticed(device.loan)  # told of the lock ahead
    if swept:
        loan_stage_sweep(
            lender_id=lender.pk,
            business_date=lender_local_date(lender=lender),
            id_from=0,
            id_to=10**12,
        )
    return Loan.objects.get(pk=device.loan_id)


def test_a_manual_lock_needs_a_second_person_and_then_locks_at_once(
    lender_a, make_agent, verified_client
) -> None:
    loan = late(lender_a, 70, swept=False)  # some 39 days late, before the morning's sweep
    assert loan.stage == "none"
    asker = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    asking = verified_client(asker)
    assert (
        asking.post(act(loan, "lock"), {"reason": "Customer says they will never pay."}).status_code
        == 302
    )
    ask = ManualLock.objects.get(loan=loan)
    loan.refresh_from_db()
    assert (ask.status, loan.stage) == ("requested", "none")  # nothing locked yet
    waiting = asking.get(reverse("admin:collections_loan_changelist"), {"queue": "manual_locks"})
    assert loan.reference in waiting.content.decode()

    own = asking.post(decide(loan, ask), {"approve": "yes", "reason": "Agreed."})
    assert "you cannot approve your own request" in own.content.decode()
    assert "Asked because: Customer says they will never pay." in own.content.decode()
    plain_agent = verified_client(make_agent(lender_a))
    assert (
        plain_agent.post(decide(loan, ask), {"approve": "yes", "reason": "Agreed."}).status_code
        == 403
    )

    second = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    answer = verified_client(second).post(
        decide(loan, ask), {"approve": "yes", "reason": "Seen the calls."}
    )
    assert answer.status_code == 302
    loan.refresh_from_db()
    ask.refresh_from_db()
    assert (loan.stage, ask.status, ask.decided_by_id) == ("lock", "approved", second.pk)
    change = LoanStageChange.objects.filter(loan=loan).latest("id")
    assert (change.from_stage, change.to_stage, change.cause) == ("none", "lock", "agent")
    device = loan.devices.get()
    assert DeviceState.objects.get(device=device, version=device.desired_version).level == "lock"
    decided = AuditEvent.objects.get(action="collections.manual_lock.decided")
    assert (decided.actor_id, decided.data["requested_by"], decided.data["status"]) == (
        str(second.pk),
        asker.pk,
        "approved",
    )

    arrears = sum(
        i.total_due
        for i in loan.installments.filter(due_date__lte=lender_local_date(lender=lender_a))
    )
    payment_record(
        loan_id=loan.pk,
        amount=Money(arrears, lender_a.currency),
        channel="manual",
        provider="manual",
        provider_ref="cash-1",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Cash.",
    )
    loan.refresh_from_db()
    assert loan.stage == "none"  # a payment lifts a manual lock like any other


def test_a_manual_lock_is_refused_for_a_current_loan_and_across_lenders(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a))
    current, too_early = (
        enrolled_phone(lender_a)[0].loan,
        late(lender_a, 50),
    )  # 20 days: the country says 30
    for loan in (current, too_early):
        page = client.post(act(loan, "lock"), {"reason": "Just in case."}).content.decode()
        assert "cannot be locked by hand" in page
    assert not ManualLock.objects.exists()
    stranger = verified_client(make_agent(lender_b, role=Membership.Role.SUPERVISOR))
    loan = late(lender_a, 70, swept=False)
    client.post(act(loan, "lock"), {"reason": "No answer for weeks."})
    ask = ManualLock.objects.get(loan=loan)
    assert stranger.post(decide(loan, ask), {"approve": "yes", "reason": "x"}).status_code == 404
    assert stranger.post(act(loan, "lock"), {"reason": "x"}).status_code == 404


def test_an_undecided_request_expires_after_a_day(lender_a, make_agent, verified_client) -> None:
    loan = late(lender_a, 70, swept=False)
    verified_client(make_agent(lender_a)).post(act(loan, "lock"), {"reason": "No answer."})
    ask = ManualLock.objects.get(loan=loan)
    later = timezone.now() + timedelta(hours=25)
    supervisor = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    with time_machine.travel(later):
        client = verified_client(supervisor)
        page = client.post(
            decide(loan, ask), {"approve": "yes", "reason": "Late look."}
        ).content.decode()
        assert "already decided or has expired" in page
        client.post(act(loan, "lock"), {"reason": "Asking again."})
    loan.refresh_from_db()
    assert loan.stage == "none"
    assert sorted(ManualLock.objects.values_list("status", flat=True)) == ["expired", "requested"]
    expired = AuditEvent.objects.get(
        action="collections.manual_lock.decided", data__status="expired"
    )
    assert expired.data["manual_lock_id"] == ask.pk


def test_an_agent_sends_the_reminder_again_with_whats_next(
    lender_a, make_agent, verified_client
) -> None:
    loan = late(lender_a)
    agent = make_agent(lender_a)
    answer = verified_client(agent).post(
        act(loan, "resend"), {"reason": "Customer asked for the amount."}, follow=True
    )
    message = Notification.objects.get(loan=loan, dedupe_key__startswith="resend:")
    assert message.kind == "overdue"
    assert message.body.startswith("Your installment is ")
    assert "the phone will lock (emergency calls always work)." in message.body
    assert f"The message is {message.status}." in answer.content.decode()
    event = AuditEvent.objects.get(action="collections.reminder.resent")
    assert (event.actor_id, event.reason) == (str(agent.pk), "Customer asked for the amount.")


def test_a_sale_that_fell_through_is_cancelled_and_frees_the_phone(
    lender_a, make_agent, verified_client
) -> None:
    from apps.collections.models import Payment
    from apps.devices.models import Device
    from apps.devices.services import enrollment_token_mint
    from tests.collections.factories import signed_loan
    from tests.devices.factories import valid_imei

    loan = signed_loan(lender_a)
    device = phone_registered(loan, imei=valid_imei(), brand="Tecno", model_name="Spark 20")
    enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    supervisor = verified_client(make_agent(lender_a, role=Membership.Role.SUPERVISOR))
    page = supervisor.get(reverse("admin:collections_loan_change", args=[loan.pk])).content.decode()
    assert (
        reverse("admin:devices_device_enrollment_code", args=[device.pk]) in page
    )  # a fresh code, one click
    agent = verified_client(make_agent(lender_a))
    assert (
        agent.post(act(loan, "cancel"), {"reason": "Customer changed her mind."}).status_code == 403
    )
    assert (
        supervisor.post(act(loan, "cancel"), {"reason": "Customer changed her mind."}).status_code
        == 302
    )
    loan.refresh_from_db()
    device.refresh_from_db()
    assert (loan.status, device.status) == ("cancelled", "released")
    again = phone_registered(
        signed_loan(lender_a), imei=device.imei, brand="Tecno", model_name="Spark 20"
    )
    assert again.status == "pending"  # the IMEI is free for another sale
    assert AuditEvent.objects.filter(
        action="collections.loan.cancelled", target_id=str(loan.pk)
    ).exists()

    resend = supervisor.post(act(loan, "resend"), {"reason": "Checking."}).content.decode()
    assert "Only an active loan with something due has a reminder to send." in resend  # cancelled

    enrolled = enrolled_phone(lender_a)[0].loan
    paid = signed_loan(lender_a)
    payment_record(
        loan_id=paid.pk,
        amount=Money(Decimal(500), lender_a.currency),
        channel="manual",
        provider="manual",
        provider_ref="cash-9",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Cash.",
    )
    assert Payment.objects.filter(loan=paid).exists()
    for loan in (enrolled, paid):
        page = supervisor.post(act(loan, "cancel"), {"reason": "Mistake."}).content.decode()
        assert (
            "Only a loan whose phone never enrolled and that has no payment can be cancelled."
            in page
        )
        loan.refresh_from_db()
        assert loan.status == "active"
    assert Device.objects.get(loan=enrolled).status == "enrolled"


def test_bulk_actions_go_loan_by_loan_under_the_same_rules(
    lender_a, make_agent, verified_client
) -> None:
    from apps.collections.models import LoanPause
    from apps.collections.services import loan_hardship_request

    loans = [late(lender_a) for _ in range(3)]
    asked = loans[0]  # already asked for a hardship pause: one open pause of a kind at a time
    loan_hardship_request(
        loan_id=asked.pk,
        lender_id=lender_a.pk,
        actor=Actor.system(),
        reason="Lost job.",
        until=lender_local_date(lender=lender_a) + timedelta(days=20),
    )
    url = reverse("admin:collections_loan_changelist")
    selected = {"_selected_action": [loan.pk for loan in loans]}
    agent = verified_client(make_agent(lender_a))
    form = agent.post(url, {**selected, "action": "bulk_resend"})
    assert "3 loans selected" in form.content.decode()  # the reason first
    done = agent.post(
        url,
        {**selected, "action": "bulk_resend", "apply": "1", "reason": "Flood warning SMS."},
        follow=True,
    )
    assert "3 of 3 loans done." in done.content.decode()
    assert Notification.objects.filter(dedupe_key__startswith="resend:").count() == 3
    assert (
        AuditEvent.objects.filter(
            action="collections.reminder.resent", reason="Flood warning SMS."
        ).count()
        == 3
    )

    until = lender_local_date(lender=lender_a) + timedelta(days=30)
    pause = {
        **selected,
        "action": "bulk_hardship_pause",
        "apply": "1",
        "until": until.isoformat(),
        "reason": "Floods in Budalangi.",
    }
    assert agent.post(url, pause).status_code == 403  # supervisors only
    supervisor = verified_client(make_agent(lender_a, role=Membership.Role.SUPERVISOR))
    page = supervisor.post(url, pause, follow=True).content.decode()
    assert "2 of 3 loans done." in page
    assert f"{asked.reference}: This loan already has an open pause of this kind." in page
    paused = LoanPause.objects.filter(kind="hardship", status="active", ends_on=until)
    assert set(paused.values_list("loan_id", flat=True)) == {loans[1].pk, loans[2].pk}
    for loan in loans[1:]:
        loan.refresh_from_db()
        assert loan.stage == "reminder"


def test_a_manual_lock_waits_for_the_customer_to_be_told_of_the_lock(lender_a, make_agent) -> None:
    from apps.collections.errors import LockNotNoticed
    from apps.collections.services import loan_manual_lock_request
    from apps.core.actor import Actor

    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=70))
    agent = make_agent(lender_a)
    with pytest.raises(LockNotNoticed):  # 39 days late, but never told a lock was coming
        loan_manual_lock_request(
            loan_id=device.loan_id,
            lender_id=lender_a.pk,
            user=agent,
            actor=Actor.agent(agent),
            reason="Not answering.",
        )
    noticed(device.loan)
    asked = loan_manual_lock_request(
        loan_id=device.loan_id,
        lender_id=lender_a.pk,
        user=agent,
        actor=Actor.agent(agent),
        reason="Not answering.",
    )
    assert asked.status == "requested"
