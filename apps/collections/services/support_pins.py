"""Support PINs: an agent reads the challenge off a restricted phone's lock screen (over the
phone with its customer) and gets the PIN that lifts the restrictions for a bounded time,
offline (apps/devices/offline.py holds the scheme)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_event_record
from apps.collections.errors import (
    LoanNotFound,
    SupportPinChallengeInvalid,
    SupportPinDecided,
    SupportPinLimit,
    SupportPinNoPhone,
    SupportPinReasonRequired,
    SupportPinSecondPerson,
)
from apps.collections.events import CollectionsAction
from apps.collections.ladder import rank
from apps.collections.locks import loan_lock
from apps.collections.models import Loan, LoanStageChange, SupportPin
from apps.collections.services.pauses import second_person_request_lock
from apps.core.actor import Actor
from apps.devices.selectors import device_ids_enrolled_for_loans, support_pin_compute
from apps.lenders.selectors import membership_get_for_user

CHALLENGE = re.compile(r"^[0-9]{6}$")


@dataclass(frozen=True, slots=True)
class SupportPinOutcome:
    request: SupportPin
    pin: str  # empty while a supervisor has to approve it


def _payment_since_restricted(loan: Loan) -> bool:
    """Whether a payment lowered the loan's restriction since it was last raised (the
    restriction the customer is calling about): the books say the customer paid their way
    down, and the phone, offline, may still be on the stricter state. Money that lowered
    nothing (a cent recorded by hand, say) does not count, and a payment reversed since
    brought a raise of its own at the next sweep, which starts the count again."""
    changes = LoanStageChange.objects.filter(loan=loan).order_by("-created_at", "-id")
    for change in changes.only("cause", "from_stage", "to_stage"):
        if rank(change.to_stage) > rank(change.from_stage):
            return False  # the last raise came first: nothing lowered it since
        if change.cause in (LoanStageChange.Cause.PAYMENT, LoanStageChange.Cause.PAYOFF):
            return True
    return False


def _member_of(user: User, lender_id: int) -> None:
    """Only staff of the lender (or the platform's operators) ask for its phones' PINs."""
    membership = membership_get_for_user(user_id=user.pk)
    if not user.is_superuser and (membership is None or membership.lender_id != lender_id):
        raise LoanNotFound()


def loan_support_pin_phone(loan: Loan) -> int:
    """The enrolled phone a support PIN is for; refused for a loan without one."""
    device_id = device_ids_enrolled_for_loans(loan_ids=[loan.pk]).get(loan.pk)
    if device_id is None:
        raise SupportPinNoPhone()
    return device_id


@transaction.atomic
def loan_support_pin_request(
    *, loan_id: int, lender_id: int, challenge: str, user: User, actor: Actor, reason: str
) -> SupportPinOutcome:
    """The PIN for the challenge the loan's phone shows, for an agent of the loan's lender.

    Locks the loan, then the agent's user row. Given at once when a payment lowered the
    loan's restriction since it was last raised; otherwise the request waits for a
    supervisor (``loan_support_pin_decide``). Only the lender's staff may ask.
    At most ``SUPPORT_PIN_PER_AGENT_HOUR`` requests per agent an hour. Emits
    ``collections.support_pin.requested`` and, when given, ``collections.support_pin.issued``
    (never the PIN)."""
    challenge = challenge.strip().replace(" ", "")
    if not reason.strip():
        raise SupportPinReasonRequired()
    if not CHALLENGE.match(challenge):
        raise SupportPinChallengeInvalid()
    _member_of(user, lender_id)
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    device_id = loan_support_pin_phone(loan)
    # the agent's own row, locked: two requests of one agent at once count one after the other
    User.objects.select_for_update().filter(pk=user.pk).first()
    hour_ago = timezone.now() - timedelta(hours=1)
    asked = SupportPin.objects.filter(requested_by=user, created_at__gte=hour_ago).count()
    if asked >= settings.SUPPORT_PIN_PER_AGENT_HOUR:
        raise SupportPinLimit()
    paid = _payment_since_restricted(loan)
    request = SupportPin.objects.create(
        lender_id=loan.lender_id,
        loan=loan,
        device_id=device_id,
        challenge=challenge,
        reason=reason.strip(),
        requested_by=user,
        status=SupportPin.Status.ISSUED if paid else SupportPin.Status.REQUESTED,
        payment_since_lock=paid,
        issued_at=timezone.now() if paid else None,
    )
    audit_event_record(
        actor=actor,
        action=CollectionsAction.SUPPORT_PIN_REQUESTED,
        target=loan,
        reason=request.reason,
        data={"support_pin_id": request.pk, "device_id": device_id, "payment_since": paid},
    )
    if not paid:
        return SupportPinOutcome(request=request, pin="")
    return SupportPinOutcome(
        request=request, pin=_issue(request, actor=actor, loan=loan, reason=request.reason)
    )


def _issue(request: SupportPin, *, actor: Actor, loan: Loan, reason: str) -> str:
    audit_event_record(
        actor=actor,
        action=CollectionsAction.SUPPORT_PIN_ISSUED,
        target=loan,
        reason=reason,
        data={
            "support_pin_id": request.pk,
            "device_id": request.device_id,
            "requested_by": request.requested_by_id,
        },
    )
    return support_pin_compute(
        device_id=request.device_id, lender_id=request.lender_id, challenge=request.challenge
    )


@transaction.atomic
def loan_support_pin_decide(
    *, request_id: int, lender_id: int, approve: bool, user: User, actor: Actor, reason: str
) -> SupportPinOutcome:
    """A supervisor of the lender, never the requester, approves (and reads out) or rejects a
    support PIN asked for without a payment since the restriction, within
    ``SupportPin.EXPIRES_AFTER``. Locks the loan, then the request. Emits
    ``collections.support_pin.issued`` or ``collections.support_pin.rejected``."""
    if not reason.strip():
        raise SupportPinReasonRequired()
    loan, request = second_person_request_lock(
        SupportPin,
        request_id=request_id,
        lender_id=lender_id,
        user=user,
        decided=SupportPinDecided,
        own_request=SupportPinSecondPerson,
    )
    now = timezone.now()
    request.status = SupportPin.Status.ISSUED if approve else SupportPin.Status.REJECTED
    request.decided_by, request.decided_at = user, now
    request.decision_reason = reason.strip()
    request.issued_at = now if approve else None
    request.save(
        update_fields=[
            "status",
            "decided_by",
            "decided_at",
            "decision_reason",
            "issued_at",
            "updated_at",
        ]
    )
    if not approve:
        audit_event_record(
            actor=actor,
            action=CollectionsAction.SUPPORT_PIN_REJECTED,
            target=loan,
            reason=request.decision_reason,
            data={"support_pin_id": request.pk, "requested_by": request.requested_by_id},
        )
        return SupportPinOutcome(request=request, pin="")
    return SupportPinOutcome(
        request=request,
        pin=_issue(request, actor=actor, loan=loan, reason=request.decision_reason),
    )
