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
from apps.collections.ladder import Ladder
from apps.collections.models import (
    STAGE_ORDER,
    LoanStageChange,
    RestrictionSuspension,
    Stage,
)
from apps.collections.services.stages import (
    Change,
    loan_stage_changes_apply,
    restrictions_hold_exclusive,
)
from apps.collections.sql import LOANS_STAGE_REMINDER, SUSPENSION_RESTRICTED
from apps.core.actor import Actor
from apps.core.outbox import tasks_enqueue_on_commit
from apps.core.sql import array_literal
from apps.customers.selectors import customer_locales
from apps.devices.selectors import device_ids_enrolled_for_loans
from apps.devices.services import device_states_write_shown
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


def _lenders_of(*, lender_id: int | None, country: str) -> list[int]:
    """The lenders a suspension of ``lender_id`` or of ``country`` holds, in id order."""
    if lender_id is not None:
        return [lender_id]
    return list(Lender.objects.filter(country=country).order_by("pk").values_list("pk", flat=True))


def _entries(
    suspension: RestrictionSuspension, *, action: str, actor: Actor, reason: str
) -> dict[int | None, AuditEntry]:
    """The event on each chain it concerns: each lender it holds, and the platform's for a
    country."""
    data = {
        "suspension_id": suspension.pk,
        "lender_id": suspension.lender_id,
        "country": suspension.country,
        "lower_to_reminder": suspension.lower_to_reminder,
    }
    chains: list[int | None] = [
        *_lenders_of(lender_id=suspension.lender_id, country=suspension.country)
    ]
    if suspension.lender_id is None:
        chains.append(None)
    return {
        chain: AuditEntry(actor=actor, action=action, target=suspension, data=data, reason=reason)
        for chain in chains
    }


@transaction.atomic
def restrictions_suspend(
    *,
    user: User,
    actor: Actor,
    reason: str,
    lender_id: int | None = None,
    country: str = "",
    lower_to_reminder: bool = False,
) -> RestrictionSuspension:
    """Stop every new restriction for ``lender_id`` or for every lender of ``country``, now.

    Waits for the sweeps and manual locks under way for them; from this
    commit on the sweep raises no loan they hold and no phone is locked by
    hand (tests/collections/test_services_suspensions.py). A task per lender after
    commit (``restrictions_suspension_apply``) lowers each loan above
    ``reminder`` to it with ``lower_to_reminder``, or else holds each
    restricted phone's offline fallback at its stage. One open suspension per
    lender and per country.
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
    # wait for the sweeps and manual locks under way for these lenders (they hold the lock
    # shared): from this commit on, none raises anything
    # (tests/collections/test_services_suspensions.py)
    lenders = _lenders_of(lender_id=lender_id, country=country)
    for pk in lenders:
        restrictions_hold_exclusive(lender_id=pk)
    suspension = RestrictionSuspension(
        lender_id=lender_id,
        country=country,
        reason=reason,
        lower_to_reminder=lower_to_reminder,
        started_by=user,
    )
    suspension.full_clean(exclude=["lender", "started_by"], validate_constraints=False)
    try:
        with transaction.atomic():
            suspension.save(force_insert=True)
    except IntegrityError as exc:
        raise SuspensionAlreadyOpen() from exc
    for chain, entry in _entries(
        suspension, action=CollectionsAction.RESTRICTIONS_SUSPENDED, actor=actor, reason=reason
    ).items():
        audit_events_record(lender_id=chain, entries=[entry])
    tasks_enqueue_on_commit(
        "collections.restrictions_suspension_apply",
        [{"lender_id": pk, "suspension_id": suspension.pk} for pk in lenders],
    )
    return suspension


@transaction.atomic
def restrictions_resume(
    *, suspension_id: int, user: User, actor: Actor, reason: str
) -> RestrictionSuspension:
    """Lift a suspension: from the next sweep on, late loans rise again, each to what it owes
    then (a stage that blocks apps or locks still only after its notice). A lender's admin
    may lift their lender's own, not one a platform operator started. Emits
    ``collections.restrictions.resumed``."""
    reason = reason.strip()
    if not reason:
        raise ReasonRequired()
    suspension = RestrictionSuspension.objects.select_for_update().filter(pk=suspension_id).first()
    if suspension is None or not _may_suspend(user, lender_id=suspension.lender_id):
        raise SuspensionNotAllowed()
    if suspension.started_by.is_superuser and not user.is_superuser:
        raise SuspensionNotAllowed()  # a platform operator's (a regulator's order) is theirs
    if suspension.lifted_at is not None:
        raise SuspensionNotOpen()
    suspension.lifted_at, suspension.lifted_by, suspension.lift_reason = (
        timezone.now(),
        user,
        reason,
    )
    suspension.save(update_fields=["lifted_at", "lifted_by", "lift_reason", "updated_at"])
    for chain, entry in _entries(
        suspension, action=CollectionsAction.RESTRICTIONS_RESUMED, actor=actor, reason=reason
    ).items():
        audit_events_record(lender_id=chain, entries=[entry])
    return suspension


@transaction.atomic
def restrictions_suspension_apply(
    *, lender_id: int, suspension_id: int, actor: Actor | None = None
) -> int:
    """What the open suspension ``suspension_id`` does to ``lender_id``'s current restrictions,
    in one transaction (the task after ``restrictions_suspend``). Returns how many phones.

    With ``lower_to_reminder``, every loan above reminders is lowered to
    ``reminder`` and its phone told (``loan_stage_changes_apply``, the sweep's
    writer: history and audit, cause ``suspension``), its offline fallback
    capped there too. Without, nothing is lowered, but every restricted
    phone is given its state again with its offline fallback held at its
    current stage: a phone offline when its lease ends applies nothing new
    either. Locks the loans in id order, then their phones, then the chain.
    Safe to run twice: nothing is above reminders the second time, or the
    same hold is written again; nothing once the suspension is lifted.
    """
    actor = actor or Actor.system()
    suspension = RestrictionSuspension.objects.filter(
        pk=suspension_id, lifted_at__isnull=True
    ).first()
    if suspension is None:
        return 0
    lender = Lender.objects.get(pk=lender_id)
    business_date = lender_local_date(lender=lender)
    reason = f"Restrictions suspended: {suspension.reason}"
    lower = suspension.lower_to_reminder
    floor = Stage.REMINDER if lower else Stage.NONE
    with connection.cursor() as cursor:
        cursor.execute(
            SUSPENSION_RESTRICTED,
            {
                "lender": lender_id,
                "bd": business_date,
                "order": array_literal(list(STAGE_ORDER)),
                "above": STAGE_ORDER.index(floor) + 1,
            },
        )
        rows = cursor.fetchall()
        if lower and rows:
            cursor.execute(
                LOANS_STAGE_REMINDER,
                [timezone.now(), timezone.now(), array_literal([row[0] for row in rows])],
            )
    if not rows:
        return 0
    ladder = Ladder.load(lender=lender)
    if lower:
        changes = [
            Change(
                loan_id=loan_id,
                from_stage=stage,
                to_stage=Stage.REMINDER.value,
                days=days,
                policy_version_id=pv,
                customer_id=customer_id,
                paused=True,
            )
            for loan_id, stage, pv, customer_id, days in rows
        ]
        return loan_stage_changes_apply(
            lender=lender,
            ladder=ladder,
            changes=changes,
            cause=LoanStageChange.Cause.SUSPENSION,
            business_date=business_date,
            actor=actor,
            reason=reason,
        )
    devices = device_ids_enrolled_for_loans(loan_ids=[row[0] for row in rows])
    locales = customer_locales(customer_ids={row[3] for row in rows})
    held = [row for row in rows if row[0] in devices]
    shown_as = [
        ladder.content_index(
            policy_version_id=pv,
            stage=stage,
            days=days,
            paused=False,
            locale=locales.get(customer_id, lender.locale),
            hold=True,
        )
        for _loan_id, stage, pv, customer_id, days in held
    ]
    versions = device_states_write_shown(
        lender_id=lender.pk,
        device_ids=[devices[row[0]] for row in held],
        contents=ladder.contents,
        shown_as=shown_as,
        actor=actor,
        reason=reason,
    )
    return len(versions)
