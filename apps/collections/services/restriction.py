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
index backs it all.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import AuditEntry, audit_events_record, audit_events_record_select
from apps.collections.errors import PauseReasonRequired, RestrictionsSuspended
from apps.collections.events import CollectionsAction
from apps.collections.locks import loan_lock
from apps.collections.models import (
    STAGE_ORDER,
    UNPAID_SQL,
    Installment,
    Loan,
    LoanPause,
    LoanStageChange,
    Stage,
)
from apps.collections.selectors import loan_days_overdue, restriction_suspension_in_force
from apps.core.actor import Actor
from apps.core.outbox import task_enqueue_on_commit, tasks_enqueue_on_commit
from apps.core.sql import array_literal, deadlock_retried
from apps.customers.models import Customer
from apps.customers.selectors import customer_locales
from apps.devices.desired_state import OFFLINE_LEASE
from apps.devices.errors import DeviceReleased
from apps.devices.models import Device
from apps.devices.selectors import device_ids_enrolled_for_loans, device_ids_to_release
from apps.devices.services import StateChange, device_release, device_states_write_shown
from apps.lenders.country_rules import NOTICE_ACTIONS, country_rule_for
from apps.lenders.models import Lender, RestrictionStage
from apps.lenders.selectors import lender_day_start, lender_local_date, restriction_stage_list
from apps.notifications.messages import NextStep, render
from apps.notifications.models import Notification
from apps.notifications.services import Draft, notifications_queue

_SWEEP_LOCK_NAMESPACE = 7301  # pg_advisory_xact_lock(namespace, key) for sweeps
# per lender: shared by whoever may restrict (a sweep range, a manual lock), exclusive for a
# suspension starting, so none raises anything after a suspension commits
_RESTRICT_LOCK_NAMESPACE = 7302


def restrictions_hold_shared(*, lender_id: int) -> None:
    """Take the lender's restriction lock shared, for the transaction (before the loans)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", [_RESTRICT_LOCK_NAMESPACE, lender_id]
        )


def restrictions_hold_exclusive(*, lender_id: int) -> None:
    """Take it exclusive: waits for every sweep range and manual lock of the lender under way."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [_RESTRICT_LOCK_NAMESPACE, lender_id]
        )


Action = RestrictionStage.Action


def rank(stage: str) -> int:
    return STAGE_ORDER.index(stage)


# --- the ladder ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ladder:
    """The stages a lender may apply, per pinned policy version, mildest first."""

    stages: dict[int, list[RestrictionStage]]
    # what phones show, each distinct content once, and its index by (policy version, stage,
    # fallback stage, locale): a sweep gives thousands of phones a handful of them
    contents: list[StateChange] = field(default_factory=list)
    content_of: dict[tuple[int, str, str, str], int] = field(default_factory=dict)
    # and by what decides it (policy version, stage, days, paused, locale): one lookup a phone
    index_of: dict[tuple[int, str, int, bool, str], int] = field(default_factory=dict)

    @classmethod
    def load(cls, *, lender: Lender, policy_version_ids: set[int] | None = None) -> Ladder:
        """The ladders of ``policy_version_ids``, or of every policy version of the lender."""
        rule = country_rule_for(lender.country)
        stages: dict[int, list[RestrictionStage]] = {pk: [] for pk in policy_version_ids or ()}
        if policy_version_ids is None:
            found = restriction_stage_list(lender_id=lender.pk)
        else:
            found = restriction_stage_list(policy_version_ids=policy_version_ids)
        for stage in found:
            stages.setdefault(stage.policy_version_id, [])
            if stage.action not in rule.allowed_actions:
                continue
            if stage.action == Action.LOCK and stage.days_overdue < (rule.earliest_lock_day or 0):
                continue
            stages[stage.policy_version_id].append(stage)
        return cls(stages)

    def sql_params(self) -> dict[str, list[Any]]:
        rows = [(pv, s.days_overdue, s.action) for pv, ss in self.stages.items() for s in ss]
        return {
            "pv": [r[0] for r in rows],
            "days": [r[1] for r in rows],
            "actions": [r[2] for r in rows],
        }

    def stage_for(
        self,
        *,
        policy_version_id: int,
        days: int,
        paused: bool = False,
        noticed: int | None = None,
    ) -> str:
        """The stage a loan ``days`` overdue is at (the SQL's rule, for one loan): with
        ``noticed`` (the rank of the harshest stage its customer was told of in time), a stage
        that blocks apps or locks only if told of."""
        stage = Stage.NONE.value
        for step in self.stages.get(policy_version_id, []):
            untold = noticed is not None and step.action in NOTICE_ACTIONS
            if untold and rank(step.action) > noticed:  # type: ignore[operator]  # untold: set
                continue
            if days > 0 and step.days_overdue <= days:
                stage = step.action
        if paused and rank(stage) > rank(Stage.REMINDER):
            return Stage.REMINDER.value
        return stage

    def next_step(
        self,
        *,
        policy_version_id: int,
        stage: str,
        days: int,
        paused: bool,
        today: date,
        notice_days: int,
        noticed: dict[str, date] | None = None,
    ) -> NextStep | None:
        """The next stage a loan at ``stage``, ``days`` overdue, reaches if nothing is paid,
        and the date; None if none (the last stage reached, or a pause holds the ladder).

        A loan below its ladder's step (held for a notice, or lifted) reaches that step at
        the next sweep; otherwise the next step on its day. A step that blocks apps or locks
        comes no earlier than its notice allows: ``noticed`` (stage -> the first date a
        confirmed notice allows it), else ``notice_days`` after ``today`` (a notice sent
        now)."""
        if paused:
            return None
        wanted = self.stage_for(policy_version_id=policy_version_id, days=days)
        step, on = None, today
        if rank(wanted) > rank(stage):
            step, on = wanted, today + timedelta(days=1)
        else:
            following = [s for s in self.stages.get(policy_version_id, []) if s.days_overdue > days]
            if following:
                step = following[0].action
                on = today + timedelta(days=following[0].days_overdue - days)
        if step is None:
            return None
        if step in NOTICE_ACTIONS:
            allowed = (noticed or {}).get(step) or today + timedelta(days=notice_days)
            on = max(on, allowed)
        return NextStep(stage=step, on=on)

    def content_index(
        self,
        *,
        policy_version_id: int,
        stage: str,
        days: int,
        paused: bool,
        locale: str,
        noticed: int = 0,
        hold: bool = False,
    ) -> int:
        """The index in ``contents`` of what a phone shows at ``stage``: each stage keeps the
        milder ones' effects. Its offline fallback (what the phone applies when its lease ends
        without a check-in) is the stage the loan reaches by then, never a block or a lock its
        customer was not told of (``noticed``, a rank), and ``stage`` itself with ``hold`` (a
        suspension: nothing new, offline either)."""
        decided_by = (policy_version_id, stage, days, paused, locale, noticed, hold)
        index = self.index_of.get(decided_by)
        if index is None:
            index = self.index_of[decided_by] = self._content_index(*decided_by)
        return index

    def _content_index(
        self,
        policy_version_id: int,
        stage: str,
        days: int,
        paused: bool,
        locale: str,
        noticed: int,
        hold: bool,
    ) -> int:
        lease_days = OFFLINE_LEASE.days
        fallback = (
            Stage.NONE.value
            if days == 0
            else self.stage_for(
                policy_version_id=policy_version_id,
                days=days + lease_days,
                paused=paused,
                noticed=noticed,
            )
        )
        if hold:
            fallback = stage
        key = (policy_version_id, stage, fallback, locale)
        index = self.content_of.get(key)
        if index is None:
            self.contents.append(
                self._shown(
                    policy_version_id=policy_version_id,
                    stage=stage,
                    fallback=fallback,
                    locale=locale,
                )
            )
            index = self.content_of[key] = len(self.contents) - 1
        return index

    def _shown(
        self, *, policy_version_id: int, stage: str, fallback: str, locale: str
    ) -> StateChange:
        reached = [
            s for s in self.stages.get(policy_version_id, []) if rank(s.action) <= rank(stage)
        ]
        text = ""
        for step in reached:
            text = step.messages.get(locale) or step.messages.get("en") or text
        alarms = sorted({t for s in reached if s.action == Action.ALARM for t in s.alarm_times})
        packages = {p for s in reached if s.action == Action.BLOCK_APPS for p in s.blocked_packages}
        categories = {
            c for s in reached if s.action == Action.BLOCK_APPS for c in s.blocked_categories
        }
        return StateChange(
            device_id=0,
            level=_level(stage),
            locale=locale,
            wallpaper_text=text if rank(stage) >= rank(Stage.WALLPAPER) else "",
            lock_screen_text=text if stage == Stage.LOCK else "",
            blocked_packages=tuple(sorted(packages)),
            blocked_categories=tuple(sorted(categories)),
            alarm_times=tuple(alarms) if rank(stage) >= rank(Stage.ALARM) else (),
            fallback_level=_level(fallback),
        )


def _level(stage: str) -> str:
    """A loan stage as a phone's level (``none`` is ``normal`` on the phone)."""
    return "normal" if stage == Stage.NONE else stage


# --- classification ------------------------------------------------------------------

_RANK = "array_position(%(order)s::text[], {})"
_NOTICE_IN = "('block_apps', 'lock')"  # NOTICE_ACTIONS (country_rules.py)

# Each active loan of ``{where}`` (with consent, its phone not released) that is late: its days
# overdue past grace, whether a pause of ``{pauses}`` holds it today, the pinned ladder's step
# whose [days, next step's days) holds the days overdue (``wanted``), and its target stage:
# ``reminder`` at most when paused; and a step that blocks apps or locks only once the customer
# was sent a notice naming it (or a harsher one) and its date, confirmed (acknowledged by the
# phone, or accepted by the SMS provider) at least the country's notice days before the
# business date (``noticed_before``), in this spell of lateness (since the oldest unpaid due
# date); until then the ladder's highest step below it. ``unannounced``: no notice of it is on
# its way either (one is then sent). Joins, not per-loan subqueries, but for the notices of the
# loans whose step needs one (an index probe each). tests/collections/test_lock_notice.py
_CLASSIFY = f"""
ladder AS (
    SELECT s.policy_version_id, s.days AS lo, s.action,
        lead(s.days) OVER (PARTITION BY s.policy_version_id ORDER BY s.days) AS hi
    FROM unnest(%(pv)s::bigint[], %(days)s::integer[], %(actions)s::text[])
        AS s(policy_version_id, days, action)
),
paused AS (
    SELECT DISTINCT p.loan_id FROM {LoanPause._meta.db_table} AS p
    WHERE {{pauses}} AND p.status = 'active' AND p.starts_on <= %(bd)s AND %(bd)s <= p.ends_on
),
late AS (
    SELECT l.id, l.stage, l.policy_version_id, l.customer_id, l.xmin AS seen,
           oldest.due_date AS oldest_due,
           CASE WHEN %(bd)s::date - oldest.due_date > l.grace_days
                THEN %(bd)s::date - oldest.due_date ELSE 0 END AS days
    FROM {Loan._meta.db_table} AS l
    CROSS JOIN LATERAL (  -- the oldest unpaid installment: one entry of the unpaid index
        SELECT i.due_date FROM {Installment._meta.db_table} AS i
        WHERE i.loan_id = l.id AND {UNPAID_SQL.format(t="i")} ORDER BY i.due_date LIMIT 1
    ) AS oldest
    WHERE {{where}} AND l.status = 'active' AND l.consent_id IS NOT NULL
      AND l.collateral_released_at IS NULL  -- a phone released at payoff is free for good
),
placed AS (
    SELECT t.*, s.action AS wanted, p.loan_id IS NOT NULL AS paused,
        s.action IN {_NOTICE_IN} AND p.loan_id IS NULL AS needs_notice,
        n.noticed, n.announced
    FROM late AS t
    LEFT JOIN ladder AS s ON s.policy_version_id = t.policy_version_id
        AND s.lo <= t.days AND (s.hi IS NULL OR t.days < s.hi)
    LEFT JOIN paused AS p ON p.loan_id = t.id
    LEFT JOIN LATERAL (  -- the harshest stage announced: confirmed in time, and at all
        SELECT coalesce(max({_RANK.format("x.announces_stage")}) FILTER (
                   WHERE coalesce(x.acked_at, x.sms_sent_at) < %(noticed_before)s
                     AND x.announces_on <= %(bd)s), 0) AS noticed,
               coalesce(max({_RANK.format("x.announces_stage")}), 0) AS announced
        FROM {Notification._meta.db_table} AS x
        WHERE s.action IN {_NOTICE_IN} AND p.loan_id IS NULL
          AND x.loan_id = t.id AND x.announces_stage <> ''
          AND x.created_at >= t.oldest_due::timestamp AT TIME ZONE %(tz)s
          AND x.status NOT IN ('suppressed', 'failed')
    ) AS n ON true
    WHERE t.days > 0
),
classified AS (
    SELECT t.id, t.stage, t.policy_version_id, t.customer_id, t.days, t.seen, t.paused,
        CASE WHEN t.paused AND {_RANK.format("t.wanted")} > {_RANK.format("'reminder'")}
                 THEN 'reminder'
             WHEN t.needs_notice AND t.noticed < {_RANK.format("t.wanted")}
                 THEN coalesce(c.action, 'none')
             ELSE coalesce(t.wanted, 'none') END AS target,
        t.needs_notice AND t.announced < {_RANK.format("t.wanted")} AS unannounced, t.wanted,
        t.noticed
    FROM placed AS t
    LEFT JOIN LATERAL (  -- held for its notice: the ladder's highest step it may reach
        SELECT c.action FROM ladder AS c
        WHERE t.needs_notice AND t.noticed < {_RANK.format("t.wanted")}
          AND c.policy_version_id = t.policy_version_id AND c.lo <= t.days
          AND {_RANK.format("c.action")} <= greatest(t.noticed, {_RANK.format("'alarm'")})
        ORDER BY c.lo DESC LIMIT 1
    ) AS c ON true
)
"""  # noqa: S608  (table names from model metadata; values are parameters)

_RANGE = "l.lender_id = %(lender)s AND l.id >= %(lo)s AND l.id < %(hi)s AND l.stage <> 'lock'"
_IDS = "l.lender_id = %(lender)s AND l.id = ANY(%(ids)s::bigint[]) AND l.stage <> 'lock'"
_RANGE_PAUSES = "p.lender_id = %(lender)s AND p.loan_id >= %(lo)s AND p.loan_id < %(hi)s"

_RAISED_WITH = f"""
SELECT c.*, d.id AS device_id, cu.locale FROM changed AS c
LEFT JOIN {Device._meta.db_table} AS d ON d.loan_id = c.id AND d.status = 'enrolled'
LEFT JOIN {Customer._meta.db_table} AS cu ON cu.id = c.customer_id
"""  # noqa: S608  (each raised loan with its enrolled phone and its customer's language)

_NOT_RAISED_TODAY = f"""NOT EXISTS (
    SELECT 1 FROM {LoanStageChange._meta.db_table} AS h
    WHERE h.loan_id = l.id AND h.business_date = %(bd)s AND h.cause = 'sweep')"""  # noqa: S608

# Lock, in id order, the loans of the range whose pause ends (before the pauses are closed:
# the global order takes the loan before its pause).
_PAUSE_ENDS_LOCK = f"""
SELECT id FROM {Loan._meta.db_table} WHERE id IN (
    SELECT loan_id FROM {LoanPause._meta.db_table} AS p
    WHERE {_RANGE_PAUSES} AND p.status IN ('requested', 'active') AND p.ends_on < %(bd)s)
ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608

# Classify the range and raise, in the same statement, each loan that must rise and whose
# row is still the version classified (``xmin``): a payment, a reversal or a pause
# committed meanwhile wrote the row too (the installment and pause triggers), so the
# update skips it. Returns the raised loans (kind ``raised``), the rising ones skipped
# (``again``: to be locked and classified again) and those not raised that wait for a notice
# no one has sent (``unannounced``, with the stage and days: one is sent).
_RAISE_RANGE = f"""
WITH {_CLASSIFY.format(where=_RANGE, pauses=_RANGE_PAUSES)},
acting AS MATERIALIZED (
    SELECT * FROM classified
    WHERE {_RANK.format("target")} > {_RANK.format("stage")} OR unannounced
),
changed AS (
    UPDATE {Loan._meta.db_table} AS l
    SET stage = c.target, stage_changed_at = %(now)s, updated_at = %(now)s
    FROM acting AS c
    WHERE l.id = c.id AND {_RANK.format("c.target")} > {_RANK.format("c.stage")}
      AND l.xmin = c.seen AND l.stage = c.stage AND {_NOT_RAISED_TODAY}
    RETURNING l.id, c.stage, c.target, c.days, c.policy_version_id, c.customer_id, c.paused,
        c.noticed
)
SELECT raised.*, 'raised' AS kind FROM ({_RAISED_WITH}) AS raised
UNION ALL
SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'again' FROM acting
WHERE {_RANK.format("target")} > {_RANK.format("stage")} AND id NOT IN (SELECT id FROM changed)
UNION ALL
SELECT id, NULL, wanted, days, NULL, NULL, NULL, NULL, NULL, NULL, 'unannounced' FROM acting
WHERE unannounced AND id NOT IN (SELECT id FROM changed)
ORDER BY 1
"""  # noqa: S608

_IDS_LOCK = f"SELECT id FROM {Loan._meta.db_table} WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id FOR NO KEY UPDATE"  # noqa: S608

# Classify again, with this statement's snapshot, loans locked already, and raise those
# that must rise.
_SWEEP = f"""
WITH {_CLASSIFY.format(where=_IDS, pauses="p.loan_id = ANY(%(ids)s::bigint[])")},
changed AS (
    UPDATE {Loan._meta.db_table} AS l
    SET stage = c.target, stage_changed_at = %(now)s, updated_at = %(now)s
    FROM classified AS c
    WHERE l.id = c.id AND l.stage = c.stage AND l.status = 'active'
      AND {_RANK.format("c.target")} > {_RANK.format("c.stage")} AND {_NOT_RAISED_TODAY}
    RETURNING l.id, c.stage, c.target, c.days, c.policy_version_id, c.customer_id, c.paused,
        c.noticed
)
{_RAISED_WITH}
"""  # noqa: S608

_ONE = (
    f"WITH {_CLASSIFY.format(where='l.id = %(loan)s', pauses='p.loan_id = %(loan)s')} "  # noqa: S608
    "SELECT days, paused, target, noticed FROM classified"
)

_HISTORY = f"""
INSERT INTO {LoanStageChange._meta.db_table}
    (lender_id, loan_id, from_stage, to_stage, cause, days_overdue, business_date,
     policy_version_id, device_version, created_at, updated_at)
SELECT %(lender)s, h.loan, h.f, h.t, %(cause)s, h.d, %(bd)s, h.pv, h.v, %(now)s, %(now)s
FROM unnest(%(loans)s::bigint[], %(froms)s::text[], %(tos)s::text[], %(ds)s::integer[],
            %(pvs)s::bigint[], %(vs)s::integer[]) AS h(loan, f, t, d, pv, v)
"""  # noqa: S608


# the audit event of each change, built in SQL from the same arrays as the history
_AUDIT_ROWS = """
SELECT n, loan::text AS target_id, jsonb_build_object(
    'stage', jsonb_build_object('old', f, 'new', t), 'cause', %(cause)s::text,
    'days_overdue', d, 'business_date', %(bd)s::text, 'policy_version_id', pv,
    'paused', p, 'device_id', device, 'device_version', v) AS data
FROM unnest(%(loans)s::bigint[], %(froms)s::text[], %(tos)s::text[], %(ds)s::integer[],
            %(pvs)s::bigint[], %(paused)s::boolean[], %(devices)s::bigint[], %(vs)s::integer[])
    WITH ORDINALITY AS c(loan, f, t, d, pv, p, device, v, n)
"""


class Change(NamedTuple):  # a tuple: the sweep makes one per changed loan
    loan_id: int
    from_stage: str
    to_stage: str
    days: int
    policy_version_id: int
    customer_id: int
    paused: bool
    noticed: int = 0  # the rank of the harshest stage its customer was told of in time


@dataclass(frozen=True, slots=True)
class SweepReport:
    changes: int
    phones: int
    pauses_closed: int


def loan_stage_changes_apply(
    *,
    lender: Lender,
    ladder: Ladder,
    changes: list[Change],
    cause: str,
    business_date: date,
    actor: Actor,
    reason: str,
    devices: dict[int, int] | None = None,
    locales: dict[int, str] | None = None,
) -> int:
    """Write the phones' states, the history rows and the audit events of ``changes``
    (the loans are updated and locked already), in bulk. Returns how many phones took
    a state. ``devices`` (loan -> enrolled phone) and ``locales`` (customer ->
    language) are looked up unless given."""
    if devices is None:
        devices = device_ids_enrolled_for_loans(loan_ids=[c.loan_id for c in changes])
    if locales is None:
        locales = customer_locales(customer_ids={c.customer_id for c in changes})
    phones = [c for c in changes if c.loan_id in devices]
    shown_as = [
        ladder.content_index(
            policy_version_id=c.policy_version_id,
            stage=c.to_stage,
            days=c.days,
            paused=c.paused,
            locale=locales.get(c.customer_id, lender.locale),
            noticed=c.noticed,
        )
        for c in phones
    ]
    # each stage event names the phone and its new version: no second event per state
    versions = device_states_write_shown(
        lender_id=lender.pk,
        device_ids=[devices[c.loan_id] for c in phones],
        contents=ladder.contents,
        shown_as=shown_as,
        actor=actor,
        reason=reason,
        audit=False,
    )
    by_loan = {loan_id: versions.get(device_id) for loan_id, device_id in devices.items()}
    arrays = {
        "loans": [c.loan_id for c in changes],
        "froms": [c.from_stage for c in changes],
        "tos": [c.to_stage for c in changes],
        "ds": [c.days for c in changes],
        "pvs": [c.policy_version_id for c in changes],
        "paused": [c.paused for c in changes],
        "vs": [by_loan.get(c.loan_id) for c in changes],
        "devices": [devices.get(c.loan_id) if c.loan_id in by_loan else None for c in changes],
    }
    rows = {
        "lender": lender.pk,
        "cause": cause,
        "bd": business_date,
        "now": timezone.now(),
        **{name: array_literal(values) for name, values in arrays.items()},
    }
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY, rows)
    audit_events_record_select(
        lender_id=lender.pk,
        actor=actor,
        action=CollectionsAction.STAGE_CHANGED,
        target_type=Loan._meta.label_lower,
        reason=reason,
        rows=_AUDIT_ROWS,
        params={**rows, "bd": business_date.isoformat()},
    )
    return len(versions)


# --- the sweep -----------------------------------------------------------------------

_PAUSES_CLOSE = f"""
UPDATE {LoanPause._meta.db_table} AS p
SET status = CASE
        WHEN p.status = 'requested' THEN 'ended'
        WHEN p.kind <> 'promise' THEN 'ended'
        WHEN EXISTS (SELECT 1 FROM {Installment._meta.db_table} AS i
                     WHERE i.loan_id = p.loan_id AND {UNPAID_SQL.format(t="i")}
                       AND i.due_date <= p.starts_on) THEN 'broken'
        ELSE 'kept' END,
    closed_at = %(now)s, updated_at = %(now)s
WHERE p.lender_id = %(lender)s AND p.loan_id >= %(lo)s AND p.loan_id < %(hi)s
  AND p.status IN ('requested', 'active') AND p.ends_on < %(bd)s
RETURNING p.id, p.loan_id, p.kind, p.status
"""  # noqa: S608


# Loans of the range off the ladder for good (their phone released at payoff, the loan
# reopened since) that still claim a stage, which their phone can never take (rows from before
# the ladder knew of it), locked in id order.
_RELEASED_STAGED = f"""
SELECT id, stage, policy_version_id, customer_id FROM {Loan._meta.db_table}
WHERE lender_id = %(lender)s AND id >= %(lo)s AND id < %(hi)s
  AND status = 'active' AND collateral_released_at IS NOT NULL AND stage <> 'none'
ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608  (table names from model metadata; values are parameters)


def _released_lowered(
    cursor: Any, *, lender: Lender, ladder: Ladder, params: dict[str, Any], actor: Actor
) -> None:
    """Bring those loans to no stage, with their history rows and audit events (cause
    ``payoff``, the phone's release), and no phone state: their phones are free."""
    cursor.execute(_RELEASED_STAGED, params)
    rows = cursor.fetchall()
    if not rows:
        return
    cursor.execute(
        f"UPDATE {Loan._meta.db_table} SET stage = 'none', stage_changed_at = %s, updated_at = %s"  # noqa: S608
        " WHERE id = ANY(%s::bigint[])",
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
    now = timezone.now()
    params = {
        "lender": lender_id,
        "lo": id_from,
        "hi": id_to,
        "bd": business_date,
        "now": now,
        "order": list(STAGE_ORDER),
        **_notice_params(lender, business_date),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        key = zlib.crc32(f"{lender_id}:{id_from}:{id_to}".encode()) - 2**31
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_SWEEP_LOCK_NAMESPACE, key])
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", [_RESTRICT_LOCK_NAMESPACE, lender_id]
        )
        ladder = Ladder.load(lender=lender)  # every version: cheaper than finding the range's
        # The loans whose pause ends are locked (the loan before its pause), then the pauses
        # closed: the raise below classifies them with the pauses as closed.
        cursor.execute(_PAUSE_ENDS_LOCK, params)
        cursor.execute(_PAUSES_CLOSE, params)
        closed = cursor.fetchall()
        _released_lowered(cursor, lender=lender, ladder=ladder, params=params, actor=actor)
        found = []
        # a suspension (a regulator's order, an outage) holds every loan where it is: nothing
        # rises while it stands, pauses still close
        if restriction_suspension_in_force(lender=lender) is None:
            cursor.execute(_RAISE_RANGE, {**params, **ladder.sql_params()})
            found = cursor.fetchall()
        rows = [row[:10] for row in found if row[10] == "raised"]
        again = [row[0] for row in found if row[10] == "again"]
        unannounced = [[row[0], row[2], row[3]] for row in found if row[10] == "unannounced"]
        if again:  # written since classified: lock, then classify with a snapshot that sees it
            ids = array_literal(again)
            cursor.execute(_IDS_LOCK, {"ids": ids})
            cursor.execute(_SWEEP, {**params, "ids": ids, **ladder.sql_params()})
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


def _notice_params(lender: Lender, business_date: date) -> dict[str, Any]:
    """The classification's notice parameters: a notice counts if confirmed on a local date
    at least the country's ``lock_notice_days`` before ``business_date``."""
    days = country_rule_for(lender.country).lock_notice_days
    noticed_before = lender_day_start(lender=lender, day=business_date - timedelta(days=days - 1))
    return {"tz": lender.timezone, "noticed_before": noticed_before}


def _restriction_notices_later(
    *, lender_id: int, business_date: date, loans: list[list[Any]]
) -> None:
    task_enqueue_on_commit(
        "collections.restriction_notices_queue",
        lender_id=lender_id,
        business_date=business_date.isoformat(),
        loans=loans,
    )


@transaction.atomic
def restriction_notices_queue(
    *, lender_id: int, business_date: date, loans: list[list[Any]]
) -> int:
    """Send the notice a held loan waits for: ``loans`` are [loan id, stage, days overdue] the
    sweep of ``business_date`` held below a stage that blocks apps or locks, with no notice of
    it on its way. Each notice names the stage and the date it applies if nothing is paid:
    the country's ``lock_notice_days`` from now (the sweep applies it once the notice is
    confirmed that long before). Returns how many were new; one per loan, stage and day
    (a second run queues nothing). A loan no longer active gets none.
    """
    lender = Lender.objects.get(pk=lender_id)
    on = business_date + timedelta(days=country_rule_for(lender.country).lock_notice_days)
    active = dict(
        Loan.objects.filter(
            pk__in=[row[0] for row in loans], lender_id=lender_id, status=Loan.Status.ACTIVE
        ).values_list("pk", "customer_id")
    )
    locales = customer_locales(customer_ids=set(active.values()))
    drafts = []
    for loan_id, stage, days in loans:
        if loan_id not in active:
            continue
        locale = locales.get(active[loan_id], lender.locale)
        step = NextStep(stage=stage, on=on)
        drafts.append(
            Draft(
                customer_id=active[loan_id],
                loan_id=loan_id,
                kind=Notification.Kind.NOTICE,
                locale=locale,
                dedupe_key=f"notice:{loan_id}:{stage}:{business_date.isoformat()}",
                body=render(
                    "overdue", locale=locale, currency=lender.currency, days=days, step=step
                ),
                announces_stage=stage,
                announces_on=on,
            )
        )
    return notifications_queue(lender=lender, drafts=drafts)


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


_RAISED = f"""
SELECT h.loan_id, l.customer_id, h.days_overdue, h.policy_version_id, h.to_stage,
    EXISTS (SELECT 1 FROM {LoanPause._meta.db_table} AS p
            WHERE p.loan_id = h.loan_id AND p.status = 'active'
              AND p.starts_on <= h.business_date AND h.business_date <= p.ends_on) AS paused
FROM {LoanStageChange._meta.db_table} AS h
JOIN {Loan._meta.db_table} AS l ON l.id = h.loan_id
WHERE h.lender_id = %(lender)s AND h.business_date = %(bd)s AND h.cause = 'sweep'
  AND h.loan_id >= %(lo)s AND h.loan_id < %(hi)s AND l.stage = h.to_stage
ORDER BY h.loan_id
"""  # noqa: S608


@transaction.atomic
def overdue_notices_queue(*, lender_id: int, business_date: date, id_from: int, id_to: int) -> int:
    """Queue the overdue notice ("what happens next and when") of each loan of the range
    that the sweep of ``business_date`` raised; returns how many were new.

    Runs after the sweep's commit, as its own task, so the sweep's transaction
    carries no message rendering. A loan whose stage has come down since (paid
    meanwhile) gets none; the dedupe key (loan, date) makes a second run queue
    nothing.
    """
    lender = Lender.objects.get(pk=lender_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _RAISED, {"lender": lender_id, "bd": business_date, "lo": id_from, "hi": id_to}
        )
        raised = cursor.fetchall()
    if not raised:
        return 0
    ladder = Ladder.load(lender=lender, policy_version_ids={row[3] for row in raised})
    locales = customer_locales(customer_ids={row[1] for row in raised})
    notice_days = country_rule_for(lender.country).lock_notice_days
    drafts = []
    for loan_id, customer_id, days, policy_version_id, stage, paused in raised:
        locale = locales.get(customer_id, lender.locale)
        step = ladder.next_step(
            policy_version_id=policy_version_id,
            stage=stage,
            days=days,
            paused=paused,
            today=business_date,
            notice_days=notice_days,
        )
        announces = step is not None and step.stage in NOTICE_ACTIONS
        drafts.append(
            Draft(
                customer_id=customer_id,
                loan_id=loan_id,
                kind="overdue",
                locale=locale,
                dedupe_key=f"overdue:{loan_id}:{business_date.isoformat()}",
                body=render(
                    "overdue", locale=locale, currency=lender.currency, days=days, step=step
                ),
                announces_stage=step.stage if step and announces else "",
                announces_on=step.on if step and announces else None,
            )
        )
    return notifications_queue(lender=lender, drafts=drafts)


# --- lowering: payment, pause, agent ---------------------------------------------------


class Classified(NamedTuple):
    days: int
    paused: bool
    target: str
    noticed: int  # the rank of the harshest stage its customer was told of in time


def loan_classify(*, loan: Loan, lender: Lender, ladder: Ladder, business_date: date) -> Classified:
    """The sweep's classification of one loan (the same statement, for ``loan`` alone): days
    overdue past grace, paused, the target stage and the notices' rank; all zero when the loan
    is not late."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ONE,
            {
                "loan": loan.pk,
                "bd": business_date,
                "order": list(STAGE_ORDER),
                **_notice_params(lender, business_date),
                **ladder.sql_params(),
            },
        )
        row = cursor.fetchone()
    return Classified(*row) if row else Classified(0, False, Stage.NONE.value, 0)


def loan_stage_settle(*, loan: Loan, actor: Actor, cause: str, reason: str = "") -> str:
    """Lower ``loan``'s stage to what it deserves now; never raise it. Returns the stage.

    For a payment, a pause or an agent's action, in the caller's transaction,
    which holds the loan's row lock. A paid-off loan goes to ``none`` and its
    phone is released for good (``device_release``: pushed until the phone
    acks). A loan already at ``none`` that is not paid off costs no query.
    Emits ``collections.loan.stage_changed``.
    """
    paid_off = loan.status == Loan.Status.PAID_OFF
    if loan.stage == Stage.NONE and not paid_off:
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
        loan_stage_changes_apply(
            lender=lender,
            ladder=ladder,
            changes=[change],
            cause=cause,
            business_date=business_date,
            actor=actor,
            reason=reason or f"Lowered after {cause}.",
        )
    if paid_off:
        _release_phones(loan=loan, actor=actor)
    return loan.stage


def _release_phones(*, loan: Loan, actor: Actor) -> None:
    for device_id in device_ids_to_release(loan_ids=[loan.pk]):
        # released between the read and the lock: nothing more to do
        with contextlib.suppress(DeviceReleased):
            device_release(
                device_id=device_id, actor=actor, reason=f"Loan {loan.reference} paid off."
            )


# --- the fan-out -----------------------------------------------------------------------


_RANGE_STARTS = f"""
SELECT id FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM {Loan._meta.db_table} WHERE lender_id = %s AND status = 'active'
) AS numbered
WHERE (n - 1) %% %s = 0 ORDER BY id
"""  # noqa: S608


def loan_sweep_ranges(*, lender_id: int, size: int) -> list[tuple[int, int]]:
    """[id_from, id_to) ranges of ``size`` active loans each (the last one open-ended),
    covering the lender's: counted, not spanned, so interleaved lenders cost no extra."""
    if size < 1:
        raise ValueError(f"a sweep range holds at least one loan, not {size}")
    with connection.cursor() as cursor:
        cursor.execute(_RANGE_STARTS, [lender_id, size])
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
