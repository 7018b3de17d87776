"""Manual actions on a loan beyond pauses: a manual lock under the two-person rule, a
reminder sent again by hand, and cancelling a sale before its phone enrolled."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.audit.services import AuditEntry, audit_event_record, audit_events_record
from apps.collections.errors import (
    LoanCancelRefused,
    LockNotNoticed,
    ManualLockDecided,
    ManualLockNotAllowed,
    NothingToRemind,
    PauseReasonRequired,
    RestrictionsSuspended,
    SecondPersonRequired,
)
from apps.collections.events import CollectionsAction
from apps.collections.ladder import Ladder, rank
from apps.collections.locks import loan_lock, loan_phones_lock
from apps.collections.models import Loan, LoanPause, ManualLock, Stage
from apps.collections.selectors import (
    loan_days_overdue,
    loan_next_due,
    loan_overview,
    payment_list_for_loan,
    restriction_suspension_in_force,
)
from apps.collections.services.agent_moves import loan_stage_lock_now
from apps.collections.services.loans import loan_transition
from apps.collections.services.pauses import second_person_request_lock
from apps.collections.services.stages import loan_classify
from apps.core.actor import Actor
from apps.devices.selectors import device_list_for_loan
from apps.devices.services import device_registrations_void
from apps.lenders.country_rules import country_rule_for
from apps.lenders.messages import message_book
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_local_date
from apps.notifications.messages import NextStep, render
from apps.notifications.selectors import notification_status
from apps.notifications.services import Draft, notifications_queue


def loan_manual_lock_check(loan: Loan) -> None:
    """The rules a manual lock keeps: never a current, paid-off, cancelled or unconsented loan,
    nor one whose phone was released at payoff,
    never one under a promise, pause or legal hold, never a lock the country forbids or before
    its earliest lock day."""
    lender = Lender.objects.get(pk=loan.lender_id)
    rule = country_rule_for(lender.country)
    days = loan_days_overdue(loan=loan) if loan.status == Loan.Status.ACTIVE else 0
    today = lender_local_date(lender=lender)
    paused = LoanPause.objects.filter(
        loan=loan, status=LoanPause.Status.ACTIVE, starts_on__lte=today, ends_on__gte=today
    ).exists()
    if (
        paused
        or loan.status != Loan.Status.ACTIVE
        or loan.collateral_released_at is not None
        or loan.consent_id is None
        or loan.stage == "lock"
        or days == 0
        or "lock" not in rule.allowed_actions
        or days < (rule.earliest_lock_day or 0)
    ):
        raise ManualLockNotAllowed(days_overdue=days)
    if restriction_suspension_in_force(lender=lender) is not None:
        raise RestrictionsSuspended()
    # a lock by hand needs the notice a lock by the ladder needs (docs/restriction.md)
    ladder = Ladder.load(lender=lender, policy_version_ids={loan.policy_version_id})
    told = loan_classify(loan=loan, lender=lender, ladder=ladder, business_date=today).noticed
    if told < rank(Stage.LOCK):
        raise LockNotNoticed()


@transaction.atomic
def loan_manual_lock_request(
    *, loan_id: int, lender_id: int, user: User | None, actor: Actor, reason: str
) -> ManualLock:
    """Ask to lock a late loan's phone now; a second person decides (``loan_manual_lock_decide``).
    ``user`` is the agent asking, None for the lender's system (the lender API): then every
    supervisor or admin of the lender may decide.

    Locks the loan. One open request per loan. Emits ``collections.manual_lock.requested``.
    """
    if not reason.strip():
        raise PauseReasonRequired()
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    loan_manual_lock_check(loan)
    now = timezone.now()
    stale = ManualLock.objects.filter(
        loan=loan, status=ManualLock.Status.REQUESTED, created_at__lt=now - ManualLock.EXPIRES_AFTER
    )
    for expired in stale.values_list("pk", flat=True):  # at most one: one open request per loan
        audit_event_record(
            actor=actor,
            action=CollectionsAction.MANUAL_LOCK_DECIDED,
            target=loan,
            data={"manual_lock_id": expired, "status": ManualLock.Status.EXPIRED},
        )
    stale.update(status=ManualLock.Status.EXPIRED, decided_at=now, updated_at=now)
    request = ManualLock(
        lender_id=lender_id,
        loan=loan,
        status=ManualLock.Status.REQUESTED,
        reason=reason.strip(),
        requested_by=user,
    )
    try:
        with transaction.atomic():
            request.save(force_insert=True)
    except IntegrityError as exc:
        raise ManualLockDecided(
            _("A manual lock of this loan is already waiting for approval.")
        ) from exc
    audit_event_record(
        actor=actor,
        action=CollectionsAction.MANUAL_LOCK_REQUESTED,
        target=loan,
        reason=request.reason,
        data={"manual_lock_id": request.pk},
    )
    return request


@transaction.atomic
def loan_manual_lock_decide(
    *, request_id: int, lender_id: int, approve: bool, user: User, actor: Actor, reason: str
) -> ManualLock:
    """A second person approves or rejects a manual lock: a supervisor or the lender's admin,
    never the requester, within ``ManualLock.EXPIRES_AFTER``.

    Locks the loan, then the request (the global order). Approved, the loan is checked again
    (a payment may have come meanwhile) and its phone locked at once. Emits
    ``collections.manual_lock.decided`` and ``collections.loan.stage_changed``.
    """
    if not reason.strip():
        raise PauseReasonRequired()
    loan, request = second_person_request_lock(
        ManualLock,
        request_id=request_id,
        lender_id=lender_id,
        user=user,
        decided=ManualLockDecided,
        own_request=SecondPersonRequired,
    )
    now = timezone.now()
    if approve:
        loan_manual_lock_check(loan)
    request.status = ManualLock.Status.APPROVED if approve else ManualLock.Status.REJECTED
    request.decided_by, request.decided_at, request.decision_reason = user, now, reason.strip()
    request.save(
        update_fields=["status", "decided_by", "decided_at", "decision_reason", "updated_at"]
    )
    if approve:
        loan_phones_lock(loan=loan)  # the phone is locked below
    audit_event_record(
        actor=actor,
        action=CollectionsAction.MANUAL_LOCK_DECIDED,
        target=loan,
        reason=request.decision_reason,
        data={
            "manual_lock_id": request.pk,
            "status": request.status,
            "requested_by": request.requested_by_id,
        },
    )
    if approve:
        loan_stage_lock_now(
            loan=loan,
            actor=actor,
            reason=f"Manual lock approved: {request.reason} / {request.decision_reason}",
        )
    return request


@transaction.atomic
def loan_reminder_check(loan: Loan) -> None:
    """The rule a reminder sent again keeps: an active loan that is late or has an
    installment still to pay."""
    if loan.status != Loan.Status.ACTIVE:
        raise NothingToRemind()
    if not loan_days_overdue(loan=loan) and loan_next_due(loan=loan) is None:
        raise NothingToRemind()


def loan_reminder_resend(*, loan_id: int, lender_id: int, actor: Actor, reason: str) -> str:
    """Send the customer their reminder again: how late and what happens next, or the next
    installment. Through the contact rules like any reminder (held to contact hours, counted
    against the weekly limit). Returns the message's status. Emits
    ``collections.reminder.resent``."""
    if not reason.strip():
        raise PauseReasonRequired()
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    loan_reminder_check(loan)
    lender = Lender.objects.get(pk=lender_id)
    locale = loan.customer.locale
    book = message_book(lender)
    overview = loan_overview(loan=loan)
    if overview.days_late:
        step = (
            NextStep(overview.next_stage, overview.next_stage_on)
            if overview.next_stage_on
            else None
        )
        kind, body = (
            "overdue",
            render(
                "overdue",
                book=book,
                locale=locale,
                currency=loan.currency,
                days=overview.days_late,
                step=step,
            ),
        )
    else:
        due = loan_next_due(loan=loan)
        if due is None:  # loan_reminder_check refused it: a race at most
            raise NothingToRemind()
        kind, body = (
            "due_soon",
            render(
                "due_soon",
                book=book,
                locale=locale,
                currency=loan.currency,
                amount=due.amount.amount,
                due=due.due_date,
            ),
        )
    key = f"resend:{loan.pk}:{uuid.uuid4().hex}"
    notifications_queue(
        lender=lender,
        drafts=[
            Draft(
                customer_id=loan.customer_id,
                loan_id=loan.pk,
                kind=kind,
                locale=locale,
                dedupe_key=key,
                body=body,
            )
        ],
    )
    status = notification_status(lender_id=lender_id, dedupe_key=key)
    audit_event_record(
        actor=actor,
        action=CollectionsAction.REMINDER_RESENT,
        target=loan,
        reason=reason.strip(),
        data={"kind": kind, "status": status},
    )
    return status


@transaction.atomic
def loan_cancel_check(loan: Loan, *, devices: Any = None) -> None:
    """The rule a cancelled sale keeps: an active loan whose phone never enrolled and on
    which no money was received (``devices``: its phones, locked by the caller)."""
    if devices is None:
        devices = device_list_for_loan(loan_id=loan.pk, lender_id=loan.lender_id)
    enrolled = any(device.enrolled_at is not None for device in devices)
    if loan.status != Loan.Status.ACTIVE or enrolled or payment_list_for_loan(loan=loan).exists():
        raise LoanCancelRefused()


def loan_cancel(*, loan_id: int, lender_id: int, actor: Actor, reason: str) -> Loan:
    """Cancel a sale before activation: the phone never enrolled and no money was received.

    Locks the loan. Its waiting phone is freed (``device_registrations_void``: the IMEI can be
    sold again, the enrollment code stops working) and the loan becomes ``cancelled`` for good.
    Emits ``collections.loan.cancelled`` (and ``devices.device.voided``).
    """
    if not reason.strip():
        raise PauseReasonRequired()
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    # the phones next (the global order): an enrollment under way finishes first, then is seen
    devices = device_list_for_loan(loan_id=loan.pk, lender_id=lender_id).select_for_update()
    loan_cancel_check(loan, devices=devices.order_by("pk"))
    voided = device_registrations_void(
        loan_id=loan.pk, lender_id=lender_id, actor=actor, reason=reason.strip()
    )
    transition = loan_transition(
        loan=loan, to=Loan.Status.CANCELLED, actor=actor, reason=reason.strip()
    )
    cancelled = AuditEntry(
        actor=actor,
        action=CollectionsAction.LOAN_CANCELLED,
        target=loan,
        reason=reason.strip(),
        data={"phones_freed": voided},
    )
    audit_events_record(lender_id=lender_id, entries=[transition, cancelled])
    return loan
