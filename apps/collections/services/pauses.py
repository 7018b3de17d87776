"""Pauses: a promise to pay, a hardship pause, a legal hold or dispute freeze.

An active pause stops escalation (the sweep caps the loan at ``reminder``)
and lowers a harsher stage to ``reminder`` at once. A promise is active as
soon as it is made; a hardship pause waits for a supervisor; a legal hold is
set by a supervisor. The sweep closes pauses that ended: a promise whose
arrears were not paid is broken, and the loan re-enters the ladder.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.audit.services import audit_event_record
from apps.collections.errors import (
    NothingOverdue,
    PauseAlreadyOpen,
    PauseNotOpen,
    PauseReasonRequired,
    PauseTooLong,
    SupervisorRequired,
)
from apps.collections.events import CollectionsAction
from apps.collections.locks import loan_lock, loan_lock_with_row, loan_phones_lock
from apps.collections.models import Loan, LoanPause, LoanStageChange, ManualLock, Stage, SupportPin
from apps.collections.selectors import loan_days_overdue, loan_pause_open
from apps.collections.services.settle import loan_stage_settle
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.core.money import Money
from apps.lenders.models import Lender, Membership
from apps.lenders.selectors import lender_local_date, membership_get_for_user

Kind, Status = LoanPause.Kind, LoanPause.Status
MAX_DAYS: dict[str, str] = {
    Kind.PROMISE: "PROMISE_MAX_DAYS",
    Kind.HARDSHIP: "HARDSHIP_MAX_DAYS",
    Kind.LEGAL_HOLD: "LEGAL_HOLD_MAX_DAYS",
}
SUPERVISORS = frozenset({Membership.Role.SUPERVISOR, Membership.Role.LENDER_ADMIN})


def require_supervisor(user: User, lender_id: int) -> None:
    membership = membership_get_for_user(user_id=user.pk)
    if user.is_superuser or (
        membership and membership.lender_id == lender_id and membership.role in SUPERVISORS
    ):
        return
    raise SupervisorRequired()


# the two-person requests a second person decides, each with its own refusals
SecondPersonRequest = TypeVar("SecondPersonRequest", ManualLock, SupportPin)


def second_person_request_lock(
    model: type[SecondPersonRequest],
    *,
    request_id: int,
    lender_id: int,
    user: User,
    decided: type[DomainError],
    own_request: type[DomainError],
) -> tuple[Loan, SecondPersonRequest]:
    """Lock the loan, then the request ``request_id`` of ``model`` (the global order), for a
    second person to decide: a supervisor or admin of the lender (``require_supervisor``),
    never the requester (``own_request``), while it is still requested and younger than the
    model's ``EXPIRES_AFTER`` (``decided`` otherwise, or for no such request)."""
    require_supervisor(user, lender_id)
    locked = loan_lock_with_row(model, pk=request_id, lender_id=lender_id)
    if locked is None:
        raise decided()
    loan, request = locked
    if request.requested_by_id == user.pk:
        raise own_request()
    expired = timezone.now() - request.created_at > model.EXPIRES_AFTER
    if request.status != model.Status.REQUESTED or expired:
        raise decided()
    return loan, request


def _check(*, kind: str, today: date, until: date, reason: str) -> None:
    if not reason.strip():
        raise PauseReasonRequired()
    max_days = getattr(settings, MAX_DAYS[kind])
    if not today <= until <= today + timedelta(days=max_days):
        raise PauseTooLong(
            _("A pause must end between today and %(days)s days from today.") % {"days": max_days},
            max_days=max_days,
        )


def _open(
    *,
    loan: Loan,
    kind: str,
    status: str,
    today: date,
    until: date,
    reason: str,
    actor: Actor,
    promised: Money | None = None,
    decided_by: User | None = None,
) -> LoanPause:
    pause = LoanPause(
        lender_id=loan.lender_id,
        loan=loan,
        kind=kind,
        status=status,
        starts_on=today,
        ends_on=until,
        promised_amount=promised.amount if promised else None,
        reason=reason.strip(),
        requested_by=f"{actor.type.value}:{actor.id or ''}",
        decided_by=decided_by,
        decided_at=timezone.now() if decided_by else None,
    )
    try:
        with transaction.atomic():
            pause.save(force_insert=True)
    except IntegrityError as exc:
        raise PauseAlreadyOpen(kind=kind) from exc
    if status == Status.ACTIVE and loan.stage != Stage.NONE:
        loan_phones_lock(loan=loan)  # the stage comes down below
    audit_event_record(
        actor=actor,
        action=CollectionsAction.PAUSE_OPENED,
        target=loan,
        reason=pause.reason,
        data={
            "pause_id": pause.pk,
            "kind": kind,
            "status": status,
            "starts_on": today,
            "ends_on": until,
            "promised_amount": pause.promised_amount,
        },
    )
    if status == Status.ACTIVE:
        loan_stage_settle(
            loan=loan, actor=actor, cause=LoanStageChange.Cause.PAUSE, reason=pause.reason
        )
    return pause


def loan_pause_check(loan: Loan, *, kind: str) -> None:
    """The rules a new pause of ``kind`` keeps whatever its dates: one open pause of a kind
    at a time (the unique index backs it), and a promise only on a loan with something
    overdue."""
    if loan_pause_open(loan_id=loan.pk, kind=kind):
        raise PauseAlreadyOpen(kind=kind)
    if kind == Kind.PROMISE and (
        loan.status != Loan.Status.ACTIVE or loan_days_overdue(loan=loan) == 0
    ):
        raise NothingOverdue()


@transaction.atomic
def loan_promise_record(
    *,
    loan_id: int,
    lender_id: int,
    until: date,
    actor: Actor,
    reason: str,
    amount: Money | None = None,
) -> LoanPause:
    """The customer promises to pay the arrears by ``until`` (at most ``PROMISE_MAX_DAYS``).

    By the customer or an agent. Locks the loan. Only for a loan with
    something overdue, and one open promise at a time. Active at once.
    Emits ``collections.pause.opened``.
    """
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    today = lender_local_date(lender=Lender.objects.get(pk=lender_id))
    _check(kind=Kind.PROMISE, today=today, until=until, reason=reason)
    loan_pause_check(loan, kind=Kind.PROMISE)
    return _open(
        loan=loan,
        kind=Kind.PROMISE,
        status=Status.ACTIVE,
        today=today,
        until=until,
        reason=reason,
        actor=actor,
        promised=amount,
    )


@transaction.atomic
def loan_hardship_request(
    *, loan_id: int, lender_id: int, until: date, actor: Actor, reason: str
) -> LoanPause:
    """Ask for a hardship pause until ``until``; a supervisor decides. Locks the loan.
    Emits ``collections.pause.opened`` (status requested)."""
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    today = lender_local_date(lender=Lender.objects.get(pk=lender_id))
    _check(kind=Kind.HARDSHIP, today=today, until=until, reason=reason)
    loan_pause_check(loan, kind=Kind.HARDSHIP)
    return _open(
        loan=loan,
        kind=Kind.HARDSHIP,
        status=Status.REQUESTED,
        today=today,
        until=until,
        reason=reason,
        actor=actor,
    )


@transaction.atomic
def loan_pause_decide(
    *, pause_id: int, lender_id: int, approve: bool, user: User, reason: str, actor: Actor
) -> LoanPause:
    """A supervisor approves (the pause starts today) or rejects a requested pause.

    Locks the loan, then the pause. Emits ``collections.pause.decided``.
    """
    require_supervisor(user, lender_id)
    if not reason.strip():
        raise PauseReasonRequired()
    locked = loan_lock_with_row(LoanPause, pk=pause_id, lender_id=lender_id)
    if locked is None:
        raise PauseNotOpen()
    loan, pause = locked
    today = lender_local_date(lender=Lender.objects.get(pk=lender_id))
    if pause.status != Status.REQUESTED or pause.ends_on < today:  # decided, or already over
        raise PauseNotOpen()
    pause.status = Status.ACTIVE if approve else Status.REJECTED
    pause.starts_on = min(today, pause.ends_on)
    pause.decided_by, pause.decided_at, pause.decision_reason = user, timezone.now(), reason.strip()
    if not approve:
        pause.closed_at = pause.decided_at
    pause.save()
    if approve and loan.stage != Stage.NONE:
        loan_phones_lock(loan=loan)  # the stage comes down below
    audit_event_record(
        actor=actor,
        action=CollectionsAction.PAUSE_DECIDED,
        target=loan,
        reason=pause.decision_reason,
        data={"pause_id": pause.pk, "kind": pause.kind, "status": pause.status},
    )
    if approve:
        loan_stage_settle(
            loan=loan, actor=actor, cause=LoanStageChange.Cause.PAUSE, reason=pause.decision_reason
        )
    return pause


@transaction.atomic
def loan_legal_hold_set(
    *, loan_id: int, lender_id: int, until: date, user: User, reason: str, actor: Actor
) -> LoanPause:
    """A supervisor freezes escalation (legal hold, dispute) until ``until``. Locks the loan.
    Emits ``collections.pause.opened`` (status active)."""
    return _supervisor_pause(
        kind=Kind.LEGAL_HOLD,
        loan_id=loan_id,
        lender_id=lender_id,
        until=until,
        user=user,
        reason=reason,
        actor=actor,
    )


@transaction.atomic
def loan_hardship_pause_set(
    *, loan_id: int, lender_id: int, until: date, user: User, reason: str, actor: Actor
) -> LoanPause:
    """A supervisor pauses a loan for hardship at once, with no request to decide (a region hit
    by a flood: the bulk action on the loan list). Locks the loan. Emits
    ``collections.pause.opened`` (status active)."""
    return _supervisor_pause(
        kind=Kind.HARDSHIP,
        loan_id=loan_id,
        lender_id=lender_id,
        until=until,
        user=user,
        reason=reason,
        actor=actor,
    )


def _supervisor_pause(
    *, kind: str, loan_id: int, lender_id: int, until: date, user: User, reason: str, actor: Actor
) -> LoanPause:
    """A pause a supervisor sets, active at once: no request waits for a decision."""
    require_supervisor(user, lender_id)
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    today = lender_local_date(lender=Lender.objects.get(pk=lender_id))
    _check(kind=kind, today=today, until=until, reason=reason)
    loan_pause_check(loan, kind=kind)
    return _open(
        loan=loan,
        kind=kind,
        status=Status.ACTIVE,
        today=today,
        until=until,
        reason=reason,
        actor=actor,
        decided_by=user,
    )
