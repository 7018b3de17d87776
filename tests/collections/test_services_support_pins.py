"""Support PINs: the PIN for a phone's lock-screen challenge, to an agent of its lender, at once
after a payment, else only with a supervisor's approval; rate-limited and audited."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.errors import (
    LoanNotFound,
    SupervisorRequired,
    SupportPinChallengeInvalid,
    SupportPinDecided,
    SupportPinLimit,
    SupportPinNoPhone,
    SupportPinReasonRequired,
    SupportPinSecondPerson,
)
from apps.collections.ladder import rank
from apps.collections.models import SupportPin
from apps.collections.services import (
    loan_support_pin_decide,
    loan_support_pin_request,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.lenders.models import Membership
from tests.collections.factories import signed_loan
from tests.collections.offline import challenge_of, locked_phone, pay_cash, pin_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def locked(lender_a):
    return locked_phone(lender_a)


def ask(loan, user, challenge, reason="Payment checked in M-Pesa."):
    return loan_support_pin_request(
        loan_id=loan.pk,
        lender_id=loan.lender_id,
        challenge=challenge,
        user=user,
        actor=Actor.agent(user),
        reason=reason,
    )


def pay_something(loan) -> None:
    pay_cash(loan, Decimal("100"), ref="p-small")


def test_after_a_payment_the_agent_gets_the_pin_at_once(locked, make_agent) -> None:
    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    loan.refresh_from_db()
    # lowered in the books, still restricted; the phone, offline, still locked
    assert loan.stage not in ("none", "lock")
    agent = make_agent(loan.lender)
    challenge = challenge_of(device)
    outcome = ask(loan, agent, f"{challenge[:3]} {challenge[3:]}")  # as read out, spaced
    assert outcome.pin == pin_of(device, challenge)
    assert outcome.request.status == SupportPin.Status.ISSUED
    assert outcome.request.payment_since_lock
    actions = list(
        AuditEvent.objects.filter(action__startswith="collections.support_pin").values_list(
            "action", flat=True
        )
    )
    assert actions == ["collections.support_pin.requested", "collections.support_pin.issued"]
    trail = json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))
    assert outcome.pin not in trail


def test_money_that_lowered_nothing_needs_a_supervisor(locked, make_agent) -> None:
    """A cent recorded by hand (by the asking agent, say) does not open the PIN alone."""
    device, loan = locked
    pay_something(loan)
    loan.refresh_from_db()
    assert loan.stage == "lock"
    outcome = ask(loan, make_agent(loan.lender), challenge_of(device))
    assert (outcome.pin, outcome.request.status) == ("", SupportPin.Status.REQUESTED)
    assert not outcome.request.payment_since_lock


def test_a_payment_reversed_and_swept_back_counts_no_more(locked, make_agent) -> None:
    from apps.collections.services import payment_reverse
    from tests.collections.sweeps import sweep, today

    device, loan = locked
    paid = pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    payment_reverse(
        loan_id=loan.pk,
        kind="chargeback",
        amount=Money(paid.payment.amount, loan.currency),
        provider="manual",
        provider_ref="r-1",
        payment_provider_ref=paid.payment.provider_ref,
        received_at=timezone.now(),
        actor=Actor.system(),
    )
    loan.refresh_from_db()
    lowered = loan.stage
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        sweep(loan, today(loan.lender))  # the next morning: raised again, a new restriction
        loan.refresh_from_db()
        assert rank(loan.stage) > rank(lowered)
        outcome = ask(loan, make_agent(loan.lender), challenge_of(device))
    assert outcome.pin == ""


def test_without_a_payment_a_second_person_a_supervisor_must_approve(locked, make_agent) -> None:
    device, loan = locked
    agent = make_agent(loan.lender)
    other_agent = make_agent(loan.lender)
    supervisor = make_agent(loan.lender, role=Membership.Role.SUPERVISOR)
    challenge = challenge_of(device)
    waiting = ask(loan, agent, challenge)
    assert waiting.pin == ""
    assert waiting.request.status == SupportPin.Status.REQUESTED

    def decide(user, approve=True):
        return loan_support_pin_decide(
            request_id=waiting.request.pk,
            lender_id=loan.lender_id,
            approve=approve,
            user=user,
            actor=Actor.agent(user),
            reason="Customer stranded; checked identity.",
        )

    with pytest.raises(SupervisorRequired):
        decide(other_agent)
    own = ask(loan, supervisor, challenge)  # a supervisor's own request needs another person
    with pytest.raises(SupportPinSecondPerson):
        loan_support_pin_decide(
            request_id=own.request.pk,
            lender_id=loan.lender_id,
            approve=True,
            user=supervisor,
            actor=Actor.agent(supervisor),
            reason="Mine.",
        )
    approved = decide(supervisor)
    assert approved.request.decision_reason == "Customer stranded; checked identity."
    issued = AuditEvent.objects.get(action="collections.support_pin.issued")
    assert (issued.actor_id, issued.reason) == (
        str(supervisor.pk),
        "Customer stranded; checked identity.",
    )
    assert approved.pin == pin_of(device, challenge)
    assert approved.request.decided_by == supervisor
    with pytest.raises(SupportPinDecided):
        decide(supervisor)


def test_a_rejected_request_gives_no_pin(locked, make_agent) -> None:
    device, loan = locked
    waiting = ask(loan, make_agent(loan.lender), challenge_of(device))
    supervisor = make_agent(loan.lender, role=Membership.Role.SUPERVISOR)
    rejected = loan_support_pin_decide(
        request_id=waiting.request.pk,
        lender_id=loan.lender_id,
        approve=False,
        user=supervisor,
        actor=Actor.agent(supervisor),
        reason="No payment, no reason to lift.",
    )
    assert (rejected.pin, rejected.request.status) == ("", SupportPin.Status.REJECTED)


def test_an_agent_of_another_lender_gets_nothing(locked, lender_b, make_agent) -> None:
    device, loan = locked
    pay_something(loan)
    stranger = make_agent(lender_b)
    with pytest.raises(LoanNotFound):
        loan_support_pin_request(
            loan_id=loan.pk,
            lender_id=lender_b.pk,
            challenge=challenge_of(device),
            user=stranger,
            actor=Actor.agent(stranger),
            reason="Trying.",
        )
    assert not SupportPin.objects.exists()


def test_bad_requests_are_refused_with_a_clear_error(locked, lender_a, make_agent) -> None:
    device, loan = locked
    agent = make_agent(loan.lender)
    with pytest.raises(SupportPinChallengeInvalid):
        ask(loan, agent, "12345")
    with pytest.raises(SupportPinReasonRequired):
        ask(loan, agent, challenge_of(device), reason="  ")
    with pytest.raises(SupportPinNoPhone):
        ask(signed_loan(lender_a), agent, challenge_of(device))
    assert not SupportPin.objects.exists()


def test_an_agent_may_ask_for_a_few_pins_an_hour(locked, make_agent, settings) -> None:
    device, loan = locked
    settings.SUPPORT_PIN_PER_AGENT_HOUR = 3
    agent = make_agent(loan.lender)
    for counter in range(3):
        ask(loan, agent, challenge_of(device, counter))
    with pytest.raises(SupportPinLimit):
        ask(loan, agent, challenge_of(device, 3))
    assert SupportPin.objects.count() == 3
    ask(loan, make_agent(loan.lender), challenge_of(device, 3))  # the limit is per agent


def test_a_user_of_another_lender_gets_nothing_even_naming_the_right_lender(
    locked, lender_b, make_agent
) -> None:
    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    stranger = make_agent(lender_b)
    with pytest.raises(LoanNotFound):
        ask(loan, stranger, challenge_of(device))
    assert not SupportPin.objects.exists()


def test_a_request_no_supervisor_decided_within_the_hour_is_void(locked, make_agent) -> None:
    device, loan = locked
    waiting = ask(loan, make_agent(loan.lender), challenge_of(device))
    supervisor = make_agent(loan.lender, role=Membership.Role.SUPERVISOR)
    later = timezone.now() + SupportPin.EXPIRES_AFTER + timedelta(minutes=1)
    with time_machine.travel(later, tick=False), pytest.raises(SupportPinDecided):
        loan_support_pin_decide(
            request_id=waiting.request.pk,
            lender_id=loan.lender_id,
            approve=True,
            user=supervisor,
            actor=Actor.agent(supervisor),
            reason="Too late.",
        )
    waiting.request.refresh_from_db()
    assert waiting.request.status == SupportPin.Status.REQUESTED  # nothing given
