"""Lowering a loan's stage to what it deserves now (a payment, a pause, an agent), and the
phone's release at payoff."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta

from django.utils import timezone

from apps.collections.ladder import Ladder, rank
from apps.collections.models import Loan, LoanStageChange, Stage
from apps.collections.selectors import installment_list_open
from apps.collections.services.stages import (
    Change,
    Classified,
    loan_classify,
    loan_stage_changes_apply,
)
from apps.core.actor import Actor
from apps.devices.errors import DeviceReleased
from apps.devices.models import OfflineToken
from apps.devices.selectors import (
    device_ids_enrolled_for_loans,
    device_ids_to_release,
    offline_code_waiting_for_loan,
)
from apps.devices.services import (
    CodeIssue,
    device_release,
    offline_codes_bind_state,
    offline_codes_issue,
)
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_local_date


def loan_stage_settle(*, loan: Loan, actor: Actor, cause: str, reason: str = "") -> str:
    """Lower ``loan``'s stage to what it deserves now; never raise it. Returns the stage.

    For a payment, a pause or an agent's action, in the caller's transaction,
    which holds the loan's row lock. A paid-off loan goes to ``none`` and its
    phone is released for good (``device_release``: pushed until the phone
    acks). A loan already at ``none`` that is not paid off costs no query, unless a payment
    comes on a loan once restricted (one query: is an unlock code waiting on its phone, to be
    moved on).
    Emits ``collections.loan.stage_changed``.
    """
    paid_off = loan.status == Loan.Status.PAID_OFF
    if loan.stage == Stage.NONE and not paid_off:
        # a code is only ever issued where a stage came down: never restricted, none waits
        if cause == LoanStageChange.Cause.PAYMENT and loan.stage_changed_at is not None:
            _offline_code_moved_on(loan=loan, actor=actor)
        return loan.stage
    lender = Lender.objects.get(pk=loan.lender_id)
    business_date = lender_local_date(lender=lender)
    ladder = Ladder.load(lender=lender, policy_version_ids={loan.policy_version_id})
    days, paused, target, noticed = Classified(0, False, Stage.NONE.value, 0)
    if not paid_off:
        days, paused, target, noticed = loan_classify(
            loan=loan, lender=lender, ladder=ladder, business_date=business_date
        )
    if rank(target) < rank(loan.stage):
        change = Change(
            loan_id=loan.pk,
            from_stage=loan.stage,
            to_stage=target,
            days=days,
            policy_version_id=loan.policy_version_id,
            customer_id=loan.customer_id,
            paused=paused,
            noticed=noticed,
        )
        Loan.objects.filter(pk=loan.pk).update(
            stage=target, stage_changed_at=timezone.now(), updated_at=timezone.now()
        )
        loan.stage = target
        cause = LoanStageChange.Cause.PAYOFF if paid_off else cause
        phones = device_ids_enrolled_for_loans(loan_ids=[loan.pk])
        # the code first, so that the state written next carries its count: a phone that
        # pulls the state lets it supersede the code, typed or not
        codes = (
            _offline_codes_for_payment(
                loan=loan,
                actor=actor,
                ladder=ladder,
                target=target,
                today=business_date,
                device_id=phones.get(loan.pk),
            )
            if cause == LoanStageChange.Cause.PAYMENT
            else []
        )
        loan_stage_changes_apply(
            lender=lender,
            ladder=ladder,
            changes=[change],
            cause=cause,
            business_date=business_date,
            actor=actor,
            reason=reason or f"Lowered after {cause}.",
            devices=phones,
        )
        offline_codes_bind_state(
            code_ids=codes, actor=actor, cause=f"Payment on loan {loan.reference}."
        )
    if paid_off:
        _release_phones(loan=loan, actor=actor)
    return loan.stage


def _offline_codes_for_payment(
    *, loan: Loan, actor: Actor, ladder: Ladder, target: str, today: date, device_id: int | None
) -> list[int]:
    """The unlock code a phone that is offline needs for the stage a payment lowered: paid
    until the due date of the oldest installment still unpaid (apps/devices/offline.py),
    moved on as far as needed for the ladder alone to give no more than ``target`` today
    (the books may hold a stage lower than the date gives: a block or a lock not told of,
    a pause), so the phone never derives more than the books allow."""
    if device_id is None:
        return []
    oldest = installment_list_open(loan=loan).first()
    if oldest is None:
        return []
    paid_until = oldest.due_date

    def stage_on_phone(paid_until: date) -> str:
        late = (today - paid_until).days
        days = late if late > loan.grace_days else 0
        return ladder.stage_for(policy_version_id=loan.policy_version_id, days=days)

    while paid_until < today and rank(stage_on_phone(paid_until)) > rank(target):
        paid_until += timedelta(days=1)
    return offline_codes_issue(
        issues=[
            CodeIssue(device_id=device_id, kind=OfflineToken.Kind.SET_TIME, paid_until=paid_until)
        ],
        actor=actor,
        cause=f"Payment on loan {loan.reference}.",
        before_state=True,
    )


def _offline_code_moved_on(*, loan: Loan, actor: Actor) -> None:
    """A payment on a loan already at no stage, while its phone still has a code to type (it
    has not taken the state an earlier payment wrote): a new code for the later paid-until
    date, or the phone, offline, would climb the ladder from the earlier one. Costs one
    query when no code is waiting."""
    waiting = offline_code_waiting_for_loan(loan_id=loan.pk, lender_id=loan.lender_id)
    if waiting is None or waiting.kind != OfflineToken.Kind.SET_TIME:
        return
    oldest = installment_list_open(loan=loan).first()
    if oldest is None or (waiting.paid_until and oldest.due_date <= waiting.paid_until):
        return
    offline_codes_issue(
        issues=[
            CodeIssue(
                device_id=waiting.device_id,
                kind=OfflineToken.Kind.SET_TIME,
                paid_until=oldest.due_date,
            )
        ],
        actor=actor,
        cause=f"Payment on loan {loan.reference}.",
    )


def _release_phones(*, loan: Loan, actor: Actor) -> None:
    released = []
    for device_id in device_ids_to_release(loan_ids=[loan.pk]):
        # released between the read and the lock: nothing more to do
        with contextlib.suppress(DeviceReleased):
            device_release(
                device_id=device_id, actor=actor, reason=f"Loan {loan.reference} paid off."
            )
            released.append(device_id)
    # the phone releases itself with this code where it cannot fetch its release
    offline_codes_issue(
        issues=[CodeIssue(device_id=d, kind=OfflineToken.Kind.DISABLE_PAYG) for d in released],
        actor=actor,
        cause=f"Loan {loan.reference} paid off.",
    )
