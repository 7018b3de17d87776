"""A suspension of new restrictions, for a lender or a country: started, lifted, and the
optional lowering of every current restriction to reminders."""

from __future__ import annotations

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import AuditEntry, audit_events_record
from apps.collections.errors import (
    ReasonRequired,
    SuspensionAlreadyOpen,
    SuspensionNotAllowed,
    SuspensionNotOpen,
    SuspensionScopeInvalid,
)
from apps.collections.events import CollectionsAction
from apps.collections.models import (
    STAGE_ORDER,
    UNPAID_SQL,
    Installment,
    Loan,
    LoanStageChange,
    RestrictionSuspension,
    Stage,
)
from apps.collections.services.restriction import Change, Ladder, _apply
from apps.core.actor import Actor
from apps.core.outbox import tasks_enqueue_on_commit
from apps.core.sql import array_literal
from apps.lenders.models import Lender, Membership
from apps.lenders.selectors import lender_local_date, membership_get_for_user


def _may_suspend(user: User, *, lender_id: int | None) -> bool:
    """A platform operator anywhere; a lender's admin for their own lender only."""
    if user.is_active and user.is_superuser:
        return True
    membership = membership_get_for_user(user_id=user.pk)
    return bool(
        lender_id is not None
        and membership is not None
        and membership.lender_id == lender_id
        and membership.role == Membership.Role.LENDER_ADMIN
    )


def _lenders_of(suspension: RestrictionSuspension) -> list[int]:
    if suspension.lender_id is not None:
        return [suspension.lender_id]
    return list(
        Lender.objects.filter(country=suspension.country)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _entries(
    suspension: RestrictionSuspension, *, action: str, actor: Actor, reason: str
) -> dict[int | None, AuditEntry]:
    """The event on each chain it concerns: each lender it holds, and the platform's for a
    country."""
    data = {"suspension_id": suspension.pk, "lender_id": suspension.lender_id,
            "country": suspension.country, "lower_to_reminder": suspension.lower_to_reminder}  # fmt: skip
    chains: list[int | None] = _lenders_of(suspension)
    if suspension.lender_id is None:
        chains.append(None)
    return {
        chain: AuditEntry(actor=actor, action=action, target=suspension, data=data, reason=reason)
        for chain in chains
    }


@transaction.atomic
def restrictions_suspend(
    *, user: User, actor: Actor, reason: str, lender_id: int | None = None, country: str = "",
    lower_to_reminder: bool = False,
) -> RestrictionSuspension:  # fmt: skip
    """Stop every new restriction for ``lender_id`` or for every lender of ``country``, now.

    From this commit on the sweep raises no loan they hold and no phone is
    locked by hand (tests/collections/test_suspensions.py). With
    ``lower_to_reminder``, each lender's loans above ``reminder`` are lowered
    to it, and their phones told, by a task per lender after commit
    (``restrictions_lower``). One open suspension per lender and per country.
    Emits ``collections.restrictions.suspended`` on the chain of each lender it
    holds (and the platform's, for a country).
    """
    reason, country = reason.strip(), country.strip().upper()
    if not reason:
        raise ReasonRequired()
    if (lender_id is None) == (not country) or (country and not country.isalpha()):
        raise SuspensionScopeInvalid()
    if not _may_suspend(user, lender_id=lender_id):
        raise SuspensionNotAllowed()
    suspension = RestrictionSuspension(lender_id=lender_id, country=country, reason=reason,
                                       lower_to_reminder=lower_to_reminder, started_by=user)  # fmt: skip
    suspension.full_clean(exclude=["lender", "started_by"], validate_constraints=False)
    try:
        with transaction.atomic():
            suspension.save(force_insert=True)
    except IntegrityError as exc:
        raise SuspensionAlreadyOpen() from exc
    for chain, entry in _entries(suspension, action=CollectionsAction.RESTRICTIONS_SUSPENDED,
                                 actor=actor, reason=reason).items():  # fmt: skip
        audit_events_record(lender_id=chain, entries=[entry])
    if lower_to_reminder:
        from apps.collections.tasks import restrictions_lower_task

        tasks_enqueue_on_commit(restrictions_lower_task, [
            {"lender_id": pk, "suspension_id": suspension.pk} for pk in _lenders_of(suspension)
        ])  # fmt: skip
    return suspension


@transaction.atomic
def restrictions_resume(
    *, suspension_id: int, user: User, actor: Actor, reason: str
) -> RestrictionSuspension:
    """Lift a suspension: from the next sweep on, late loans rise again (each to what it owes
    then, never a lowered stage back at once). Who may lift it is who may start it. Emits
    ``collections.restrictions.resumed``."""
    reason = reason.strip()
    if not reason:
        raise ReasonRequired()
    suspension = RestrictionSuspension.objects.select_for_update().filter(pk=suspension_id).first()
    if suspension is None or not _may_suspend(user, lender_id=suspension.lender_id):
        raise SuspensionNotAllowed()
    if suspension.lifted_at is not None:
        raise SuspensionNotOpen()
    suspension.lifted_at, suspension.lifted_by, suspension.lift_reason = (
        timezone.now(),
        user,
        reason,
    )
    suspension.save(update_fields=["lifted_at", "lifted_by", "lift_reason", "updated_at"])
    for chain, entry in _entries(suspension, action=CollectionsAction.RESTRICTIONS_RESUMED,
                                 actor=actor, reason=reason).items():  # fmt: skip
        audit_events_record(lender_id=chain, entries=[entry])
    return suspension


_RANK = "array_position(%(order)s::text[], l.stage)"

# Lock, in id order, the lender's active loans restricted beyond reminders, and lower them:
# each with its days overdue (for the history and what the phone shows), in one statement.
_LOWER = f"""
WITH held AS (
    SELECT l.id FROM {Loan._meta.db_table} AS l
    WHERE l.lender_id = %(lender)s AND l.status = 'active' AND {_RANK} > %(reminder)s
    ORDER BY l.id FOR NO KEY UPDATE
)
UPDATE {Loan._meta.db_table} AS l
SET stage = 'reminder', stage_changed_at = %(now)s, updated_at = %(now)s
FROM held, {Loan._meta.db_table} AS before
WHERE l.id = held.id AND before.id = held.id
RETURNING l.id, before.stage, l.policy_version_id, l.customer_id, coalesce((
    SELECT CASE WHEN %(bd)s::date - min(i.due_date) > l.grace_days
                THEN %(bd)s::date - min(i.due_date) ELSE 0 END
    FROM {Installment._meta.db_table} AS i
    WHERE i.loan_id = l.id AND {UNPAID_SQL.format(t="i")}), 0)
"""  # noqa: S608  (table names from model metadata; values are parameters)


@transaction.atomic
def restrictions_lower(*, lender_id: int, suspension_id: int, actor: Actor | None = None) -> int:
    """Lower every loan of ``lender_id`` restricted beyond reminders to ``reminder``, and tell
    their phones, for the open suspension ``suspension_id``. Returns how many.

    One transaction: the loans locked in id order, then their phones, the
    history and the audit events (``_apply``, the sweep's writer). The phones'
    new states hold at reminders offline too (their fallback is capped as a
    pause caps it). Safe to run twice: the second finds nothing above
    reminders; nothing is done once the suspension is lifted. Emits
    ``collections.loan.stage_changed`` (cause ``suspension``).
    """
    actor = actor or Actor.system()
    open_ = RestrictionSuspension.objects.filter(pk=suspension_id, lifted_at__isnull=True)
    if not open_.exists():
        return 0
    lender = Lender.objects.get(pk=lender_id)
    business_date = lender_local_date(lender=lender)
    with connection.cursor() as cursor:
        cursor.execute(_LOWER, {"lender": lender_id, "now": timezone.now(), "bd": business_date,
                                "order": array_literal(list(STAGE_ORDER)),
                                "reminder": STAGE_ORDER.index(Stage.REMINDER) + 1})  # fmt: skip
        rows = sorted(cursor.fetchall())
    if not rows:
        return 0
    changes = [
        Change(loan_id=loan_id, from_stage=stage, to_stage=Stage.REMINDER.value, days=days,
               policy_version_id=pv, customer_id=customer_id, paused=True)
        for loan_id, stage, pv, customer_id, days in rows
    ]  # fmt: skip
    suspension = open_.get()
    _apply(lender=lender, ladder=Ladder.load(lender=lender), changes=changes,
           cause=LoanStageChange.Cause.SUSPENSION, business_date=business_date, actor=actor,
           reason=f"Restrictions suspended: {suspension.reason}")  # fmt: skip
    return len(changes)
