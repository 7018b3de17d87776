"""The restriction engine: days overdue become a stage, and paying takes it away.

Stages only go up through the daily sweep (``loan_stage_sweep``) and only go
down through a payment, a pause or an agent (``loan_stage_settle``). Both
read the policy version pinned to the loan, filtered by the lender's
country rules at run time (a stage the country forbids is never applied; a
lock never before the country's earliest lock day), and both write the
phone's new desired state through ``apps.devices.services``.

The sweep works on one lender and one id range per call, in one
transaction, with set-based SQL: one statement classifies every active loan
of the range (days overdue past grace, the pinned ladder, an active pause
caps at ``reminder``) and raises the stages that must rise, each only if
its row is still the version classified; then the phones' states, the
history rows and the audit events are written in bulk. It is idempotent per
(loan, business date): a loan raised by a sweep today is not raised again
today, two sweeps of the same range queue on an advisory lock, and a unique
index backs it all."""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import AuditEntry, audit_events_record
from apps.collections.events import CollectionsAction
from apps.collections.ladder import Ladder
from apps.collections.models import STAGE_ORDER, Loan, LoanStageChange, Stage
from apps.collections.selectors import restriction_suspension_in_force
from apps.collections.services.stages import (
    Change,
    loan_stage_changes_apply,
    notice_params,
    restrictions_hold_shared,
)
from apps.collections.sql import (
    ADVISORY_LOCK,
    IDS_LOCK,
    LOANS_STAGE_NONE,
    PAUSE_ENDS_LOCK,
    PAUSES_CLOSE,
    RAISE_RANGE,
    RANGE_STARTS,
    READ_ONLY,
    RELEASED_STAGED,
    SWEEP_AGAIN,
    SWEEP_FORECAST,
)
from apps.core.actor import Actor
from apps.core.outbox import task_enqueue_on_commit, tasks_enqueue_on_commit
from apps.core.sql import array_literal, deadlock_retried
from apps.lenders.models import Lender, RestrictionStage
from apps.lenders.selectors import lender_local_date

_SWEEP_LOCK_NAMESPACE = 7301  # pg_advisory_xact_lock(namespace, key) for sweeps


@dataclass(frozen=True, slots=True)
class SweepReport:
    changes: int
    phones: int
    pauses_closed: int


def _released_lowered(
    cursor: Any, *, lender: Lender, ladder: Ladder, params: dict[str, Any], actor: Actor
) -> None:
    """Bring the range's loans off the ladder for good that still claim a stage
    (``RELEASED_STAGED``) to no stage, with their history rows and audit events (cause
    ``payoff``, the phone's release), and no phone state: their phones are free."""
    cursor.execute(RELEASED_STAGED, params)
    rows = cursor.fetchall()
    if not rows:
        return
    cursor.execute(
        LOANS_STAGE_NONE,
        [params["now"], params["now"], array_literal([row[0] for row in rows])],
    )
    changes = [
        Change(
            loan_id=loan_id,
            from_stage=stage,
            to_stage=Stage.NONE.value,
            days=0,
            policy_version_id=pv,
            customer_id=customer_id,
            paused=False,
        )
        for loan_id, stage, pv, customer_id in rows
    ]
    loan_stage_changes_apply(
        lender=lender,
        ladder=ladder,
        changes=changes,
        devices={},
        cause=LoanStageChange.Cause.PAYOFF,
        business_date=params["bd"],
        actor=actor,
        reason="Its phone was released at payoff.",
    )


def _sweep_params(lender: Lender, business_date: date, id_from: int, id_to: int) -> dict[str, Any]:
    """The parameters of the sweep's statements for a range of ``lender`` on a date."""
    return {
        "lender": lender.pk,
        "lo": id_from,
        "hi": id_to,
        "bd": business_date,
        "now": timezone.now(),
        "order": list(STAGE_ORDER),
        **notice_params(lender, business_date),
    }


@dataclass(frozen=True, slots=True)
class ForecastLoan:
    loan_id: int
    reference: str
    shop: str
    stage: str
    target: str
    days: int


@dataclass(frozen=True, slots=True)
class SweepForecast:
    """What a sweep of a lender on ``business_date`` would raise, and to what."""

    business_date: date
    suspended: bool  # a suspension holds the lender: the sweep raises nothing
    loans: list[ForecastLoan]

    def by_change(self) -> list[tuple[str, str, int]]:
        """(from stage, to stage, loans), in the ladder's order."""
        counts = Counter((loan.stage, loan.target) for loan in self.loans)
        order = {stage: n for n, stage in enumerate(STAGE_ORDER)}
        return [
            (a, b, n)
            for (a, b), n in sorted(counts.items(), key=lambda i: (order[i[0][0]], order[i[0][1]]))
        ]

    def by_shop(self) -> list[tuple[str, int, int]]:
        """(shop, loans raised, loans locked), by shop name."""
        raised = Counter(loan.shop for loan in self.loans)
        locked = Counter(loan.shop for loan in self.locking)
        return [(shop, raised[shop], locked[shop]) for shop in sorted(raised)]

    @property
    def locking(self) -> list[ForecastLoan]:
        return [loan for loan in self.loans if loan.target == Stage.LOCK]


def sweep_forecast(
    *,
    lender_id: int,
    business_date: date,
    draft: tuple[int, list[RestrictionStage]] | None = None,
) -> SweepForecast:
    """What ``loan_stage_sweep`` of every loan of ``lender_id`` on ``business_date`` would
    raise, computed by the sweep's own classification (``SWEEP_FORECAST``: ``RAISE_RANGE``'s
    classification and condition to rise, as a SELECT) in a read-only transaction that is
    rolled back: nothing is written, locked or sent. A suspension in force forecasts
    nothing, as it raises nothing. With ``draft`` (a policy version's id and unsaved stages,
    ``restriction_stages_draft``), the loans pinned to that version are classified under the
    draft's ladder instead: what the sweep would do if it were published for them."""
    lender = Lender.objects.get(pk=lender_id)
    if restriction_suspension_in_force(lender=lender) is not None:
        return SweepForecast(business_date=business_date, suspended=True, loans=[])
    ladder = Ladder.load(lender=lender)
    if draft is not None:
        version_id, stages = draft
        ladder = Ladder({**ladder.stages, version_id: stages})
    params = {**_sweep_params(lender, business_date, 0, 2**62), **ladder.sql_params()}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(READ_ONLY)  # a write here would fail, not happen
        cursor.execute(SWEEP_FORECAST, params)
        rows = cursor.fetchall()
        transaction.set_rollback(True)
    return SweepForecast(
        business_date=business_date,
        suspended=False,
        loans=[
            ForecastLoan(pk, ref, shop or "-", a, b, days) for pk, ref, shop, a, b, days in rows
        ],
    )


def loan_stage_sweep(
    *, lender_id: int, business_date: date, id_from: int, id_to: int, actor: Actor | None = None
) -> SweepReport:
    """``_sweep_range``, run again if PostgreSQL rolled it back as a deadlock's victim: the
    raise locks loans in its plan's order, so two sweeps of overlapping ranges (a lender
    task run twice after a loan became active shifts the ranges) can deadlock."""
    return deadlock_retried(
        lambda: _sweep_range(
            lender_id=lender_id,
            business_date=business_date,
            id_from=id_from,
            id_to=id_to,
            actor=actor,
        )
    )


def _sweep_range(
    *, lender_id: int, business_date: date, id_from: int, id_to: int, actor: Actor | None
) -> SweepReport:
    """Raise the stage of every active loan of ``lender_id`` with ``id_from <= id < id_to``
    that has become later, as of ``business_date`` (the lender's local date).

    One transaction. Locks the loans whose pause ended before the business
    date and closes those pauses (a promise not kept is broken, and its loan
    re-enters the ladder), then classifies the range and raises, in one
    statement, every loan that must rise and whose row is still the version
    classified; a loan written meanwhile (a payment, a reversal or a pause
    writes the loan's row too: the installment and pause triggers) is skipped
    there, then locked and classified again with a fresh snapshot. Then
    writes the phones' states (the devices' locks come after the loans': the
    global order), the history and the audit events. A range that raised
    loans queues its overdue notices through the task outbox: a task of their
    own (``overdue_notices_queue``) after commit. Emits
    ``collections.pause.closed`` and ``collections.loan.stage_changed`` (each naming the
    phone and the state version it was given).
    """
    actor = actor or Actor.system()
    lender = Lender.objects.get(pk=lender_id)
    params = _sweep_params(lender, business_date, id_from, id_to)
    with transaction.atomic(), connection.cursor() as cursor:
        key = zlib.crc32(f"{lender_id}:{id_from}:{id_to}".encode()) - 2**31
        cursor.execute(ADVISORY_LOCK, [_SWEEP_LOCK_NAMESPACE, key])
        restrictions_hold_shared(lender_id=lender_id)
        ladder = Ladder.load(lender=lender)  # every version: cheaper than finding the range's
        # The loans whose pause ends are locked (the loan before its pause), then the pauses
        # closed: the raise below classifies them with the pauses as closed.
        cursor.execute(PAUSE_ENDS_LOCK, params)
        cursor.execute(PAUSES_CLOSE, params)
        closed = cursor.fetchall()
        _released_lowered(cursor, lender=lender, ladder=ladder, params=params, actor=actor)
        found = []
        # a suspension (a regulator's order, an outage) holds every loan where it is: nothing
        # rises while it stands, pauses still close
        if restriction_suspension_in_force(lender=lender) is None:
            cursor.execute(RAISE_RANGE, {**params, **ladder.sql_params()})
            found = cursor.fetchall()
        rows = [row[:10] for row in found if row[10] == "raised"]
        again = [row[0] for row in found if row[10] == "again"]
        unannounced = [[row[0], row[2], row[3]] for row in found if row[10] == "unannounced"]
        if again:  # written since classified: lock, then classify with a snapshot that sees it
            ids = array_literal(again)
            cursor.execute(IDS_LOCK, {"ids": ids})
            cursor.execute(SWEEP_AGAIN, {**params, "ids": ids, **ladder.sql_params()})
            rows = sorted([*rows, *cursor.fetchall()])
        changes = [Change._make(row[:8]) for row in rows]
        devices = {row[0]: row[8] for row in rows if row[8] is not None}
        locales = {row[5]: row[9] for row in rows}
        phones = 0
        if changes:
            phones = loan_stage_changes_apply(
                lender=lender,
                ladder=ladder,
                changes=changes,
                cause=LoanStageChange.Cause.SWEEP,
                business_date=business_date,
                actor=actor,
                devices=devices,
                locales=locales,
                reason=f"Restriction sweep of {business_date.isoformat()}.",
            )
            # through the task outbox, committed with the changes: a broker down at the commit
            # delays the notices but cannot lose them, so a run that changed nothing (a
            # redelivery, a second beat) queues none
            _overdue_notices_later(
                lender_id=lender_id, business_date=business_date, id_from=id_from, id_to=id_to
            )
        if unannounced:  # their notices, after commit, as the overdue notices go
            _restriction_notices_later(
                lender_id=lender_id, business_date=business_date, loans=unannounced
            )
        # the audit chain's lock last, after the loans' and the devices' (the global order):
        # a payment holding a loan the raise waits for may be waiting for the chain
        if closed:
            audit_events_record(
                lender_id=lender_id,
                entries=[
                    AuditEntry(
                        actor=actor,
                        action=CollectionsAction.PAUSE_CLOSED,
                        target=Loan(pk=loan_id, lender_id=lender_id),
                        data={
                            "pause_id": pause_id,
                            "kind": kind,
                            "status": status,
                            "business_date": business_date,
                        },
                    )
                    for pause_id, loan_id, kind, status in closed
                ],
            )
    return SweepReport(changes=len(changes), phones=phones, pauses_closed=len(closed))


def _restriction_notices_later(
    *, lender_id: int, business_date: date, loans: list[list[Any]]
) -> None:
    task_enqueue_on_commit(
        "collections.restriction_notices_queue",
        lender_id=lender_id,
        business_date=business_date.isoformat(),
        loans=loans,
    )


def _overdue_notices_later(
    *, lender_id: int, business_date: date, id_from: int, id_to: int
) -> None:
    task_enqueue_on_commit(
        "collections.overdue_notices_queue",
        lender_id=lender_id,
        business_date=business_date.isoformat(),
        id_from=id_from,
        id_to=id_to,
    )


def loan_sweep_ranges(*, lender_id: int, size: int) -> list[tuple[int, int]]:
    """[id_from, id_to) ranges of ``size`` active loans each (the last one open-ended),
    covering the lender's: counted, not spanned, so interleaved lenders cost no extra."""
    if size < 1:
        raise ValueError(f"a sweep range holds at least one loan, not {size}")
    with connection.cursor() as cursor:
        cursor.execute(RANGE_STARTS, [lender_id, size])
        starts = [row[0] for row in cursor.fetchall()]
    if not starts:  # a lender with no active loan has nothing to sweep
        return []
    ends = [*starts[1:], 2**62]
    return list(zip(starts, ends, strict=True))


@transaction.atomic
def loan_sweep_fan_out(*, lender_id: int, size: int) -> int:
    """The morning's work for ``lender_id``: one range task per slice of ``size`` loan ids
    and the day's due-date reminders, all through the task outbox (they go out once this
    commits, and a broker outage delays them without losing them). The business date is
    fixed here, so every range of one run agrees on it. Returns how many ranges."""
    business_date = lender_business_date(lender_id=lender_id).isoformat()
    task_enqueue_on_commit(
        "notifications.reminders_queue", lender_id=lender_id, business_date=business_date
    )
    ranges = loan_sweep_ranges(lender_id=lender_id, size=size)
    tasks_enqueue_on_commit(
        "collections.loan_stage_sweep_range",
        [
            {
                "lender_id": lender_id,
                "business_date": business_date,
                "id_from": id_from,
                "id_to": id_to,
            }
            for id_from, id_to in ranges
        ],
    )
    return len(ranges)


def lender_business_date(*, lender_id: int) -> date:
    return lender_local_date(lender=Lender.objects.get(pk=lender_id))
