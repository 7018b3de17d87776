"""An agent's hand on the ladder: lifting a loan's restriction, and an approved manual lock."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.collections.errors import PauseReasonRequired, RestrictionsSuspended
from apps.collections.ladder import Ladder
from apps.collections.locks import loan_lock
from apps.collections.models import Loan, LoanStageChange, Stage
from apps.collections.selectors import loan_days_overdue, restriction_suspension_in_force
from apps.collections.services.stages import (
    Change,
    loan_classify,
    loan_stage_changes_apply,
    restrictions_hold_shared,
)
from apps.core.actor import Actor
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_local_date


@transaction.atomic
def loan_stage_lift(*, loan_id: int, lender_id: int, actor: Actor, reason: str) -> str:
    """An agent lifts the loan's restriction now: no stage, and the phone is told at once.

    Locks the loan. For a mistake or a special case, with a reason (required,
    audited). It holds until the next morning's sweep finds the loan still
    late; to hold longer, record a promise or a pause. Emits
    ``collections.loan.stage_changed`` (cause ``agent``).
    """
    if not reason.strip():
        raise PauseReasonRequired()
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    if loan.stage == Stage.NONE:
        return loan.stage
    return _agent_move(loan=loan, to=Stage.NONE.value, actor=actor, reason=reason.strip())


def loan_stage_lock_now(*, loan: Loan, actor: Actor, reason: str) -> str:
    """Lock the loan's phone now (an approved manual lock; the caller holds the loan's lock
    and has checked the loan may be locked), unless a suspension holds its lender
    (RestrictionsSuspended). Emits ``collections.loan.stage_changed`` (cause ``agent``)."""
    restrictions_hold_shared(lender_id=loan.lender_id)  # a suspension starting waits for it
    if restriction_suspension_in_force(lender=Lender.objects.get(pk=loan.lender_id)) is not None:
        raise RestrictionsSuspended()
    return _agent_move(loan=loan, to=Stage.LOCK.value, actor=actor, reason=reason)


def _agent_move(*, loan: Loan, to: str, actor: Actor, reason: str) -> str:
    """Move the locked ``loan`` to stage ``to`` by an agent's hand: the loan, the phone's state,
    the history and the audit event."""
    lender = Lender.objects.get(pk=loan.lender_id)
    ladder = Ladder.load(lender=lender, policy_version_ids={loan.policy_version_id})
    noticed = loan_classify(
        loan=loan, lender=lender, ladder=ladder, business_date=lender_local_date(lender=lender)
    ).noticed
    change = Change(
        loan_id=loan.pk,
        from_stage=loan.stage,
        to_stage=to,
        days=loan_days_overdue(loan=loan),
        policy_version_id=loan.policy_version_id,
        customer_id=loan.customer_id,
        paused=False,
        noticed=noticed,
    )
    Loan.objects.filter(pk=loan.pk).update(
        stage=to, stage_changed_at=timezone.now(), updated_at=timezone.now()
    )
    loan.stage = to
    loan_stage_changes_apply(
        lender=lender,
        ladder=ladder,
        changes=[change],
        cause=LoanStageChange.Cause.AGENT,
        business_date=lender_local_date(lender=lender),
        actor=actor,
        reason=reason,
    )
    return to
