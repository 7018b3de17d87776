"""Hand-written SQL of collections: the hot paths, and the set-based work the ORM would do row
by row.

Each statement is a module-level constant composed with ``psycopg.sql`` (tables from the
models' ``_meta.db_table`` as ``Identifier``; every value a parameter), followed by its
docstring: what it does, the locks it takes and the index it is written for. The few whose
width depends on the call (rows inserted or updated at once) are functions, documented alike.
Each is rendered once to the text the cursor sends (``_rendered``), as apps/audit/sql.py's
are: psycopg renders a composed statement again at every execution, quoting each identifier,
which for an INSERT of a dozen columns cost more CPU than running it. Each statement is held to a
Python oracle of its rule and to its plan in tests/collections/test_sql.py; those that read
rows for their models select ``select_columns`` and are loaded with ``select_rows``; and the
benchmarks import these constants rather than copying them.
"""

from __future__ import annotations

import functools
from typing import LiteralString

from django.db.models import Model
from psycopg import sql

from apps.audit.models import AuditEvent
from apps.collections.models import (
    OWED_SQL,
    UNPAID_SQL,
    Allocation,
    Installment,
    Loan,
    LoanPause,
    LoanStageChange,
    Payment,
    PaymentAttempt,
    PaymentReversal,
    WebhookEvent,
)
from apps.core.sql import insert_sql, select_columns
from apps.customers.models import Customer
from apps.devices.events import DevicesAction
from apps.devices.models import Device
from apps.lenders.country_rules import COUNTRY_RULES, DEFAULT_RULE, NOTICE_ACTIONS
from apps.lenders.models import Lender
from apps.notifications.models import Notification, VoiceCall
from apps.retailers.models import Shop


def _table(model: type[Model]) -> sql.Identifier:
    return sql.Identifier(model._meta.db_table)


# every table a statement names, by the placeholder it is named with
_TABLES: dict[str, sql.Composable] = {
    "loans": _table(Loan),
    "installments": _table(Installment),
    "payments": _table(Payment),
    "allocations": _table(Allocation),
    "attempts": _table(PaymentAttempt),
    "reversals": _table(PaymentReversal),
    "pauses": _table(LoanPause),
    "stage_changes": _table(LoanStageChange),
    "webhook_events": _table(WebhookEvent),
    "notifications": _table(Notification),
    "devices": _table(Device),
    "customers": _table(Customer),
    "lenders": _table(Lender),
    "shops": _table(Shop),
    "audit_events": _table(AuditEvent),
}


def _rendered(statement: sql.Composable) -> sql.SQL:
    """``statement`` rendered once to the text psycopg sends for it (identifiers quoted,
    literals adapted), still a ``Composable`` for the statements built on it."""
    return sql.SQL(statement.as_string())


def _compose(text: LiteralString, **parts: sql.Composable) -> sql.SQL:
    """``text`` with its ``{placeholders}`` filled (the tables above, and ``parts``), rendered."""
    return _rendered(sql.SQL(text).format(**_TABLES, **parts))


def _rank(expression: LiteralString) -> sql.Composed:
    """The rank of a stage in ``%(order)s`` (``STAGE_ORDER``), in SQL."""
    return sql.SQL("array_position(%(order)s::text[], {})").format(sql.SQL(expression))


# the one definition of unpaid and of what is owed (models.py), over the installments ``i``
_UNPAID_I = sql.SQL(UNPAID_SQL).format(t=sql.Identifier("i"))
_OWED_I = sql.SQL(OWED_SQL).format(t=sql.Identifier("i"))
# the stages that need a notice first (country_rules.NOTICE_ACTIONS), as an SQL list
_NOTICE_IN = sql.SQL("({})").format(
    sql.SQL(", ").join(sql.Literal(str(action)) for action in sorted(NOTICE_ACTIONS))
)


# --- payments and their allocation ---------------------------------------------------------

PAYMENT_INSERT = _rendered(insert_sql(Payment, conflict=("lender_id", "provider", "provider_ref")))
"""Store a payment unless its (lender, provider, provider_ref) is taken; returns its id, or
no row when taken. Idempotency without a read first: the unique constraint
``payment_provider_ref_unique_per_lender`` (its arbiter) answers "already there?" in the same
statement. Under the loan lock a conflict can only come from a payment that has committed (or
from another loan's transaction, which it then waits for), so the follow-up read sees it.
Locks: the new row; waits on a concurrent insert of the same reference."""

PAYMENT_POSITION = _compose("""
SELECT
    EXISTS (
        SELECT 1 FROM {reversals}
        WHERE lender_id = %(lender)s AND provider = %(p)s AND payment_provider_ref = %(r)s
          AND loan_id <> %(loan)s
    ),
    NOT EXISTS (
        SELECT 1 FROM {payments}
        WHERE loan_id = %(loan)s AND (received_at, provider, provider_ref) > (%(t)s, %(p)s, %(r)s)
    ) AND NOT EXISTS (
        SELECT 1 FROM {reversals}
        WHERE loan_id = %(loan)s AND provider = %(p)s AND payment_provider_ref = %(r)s
    ) AND NOT EXISTS (
        SELECT 1 FROM {installments}
        WHERE loan_id = %(loan)s AND late_fee_charged > 0 AND late_from > %(t)s
    )
""")
"""(misfiled, comes_last) of a payment not yet stored: both questions a new payment asks, in
one round trip (it runs on every payment). misfiled: a reversal of its reference, arrived
first, names another loan. comes_last: no payment of the loan sorts after it (payments sort by
(received_at, provider, provider_ref), the order allocate() replays them in; a strict ">"
cannot match the payment itself), nothing reverses it, and no installment the fee run reached
became late after it was received. Takes no lock (the caller holds the loan's). Index: each
table's loan_id index, by loan."""


PAYMENTS_IN = _compose("""
SELECT p.id, p.received_at, p.provider, p.provider_ref, p.amount,
    coalesce((SELECT sum(r.amount) FROM {reversals} AS r
              WHERE r.loan_id = p.loan_id AND r.provider = p.provider
                AND r.payment_provider_ref = p.provider_ref), 0)
FROM {payments} AS p
WHERE p.loan_id = %s
""")
"""Every payment of loan ``%s`` (id, received_at, provider, reference, amount) with what the
loan's reversals of its reference add up to, whenever they arrived: what a full replay of
the loan's books allocates (``_payments_in``), read in one statement on a replay (a reversal,
a payment received before another of the loan). Takes no lock (the caller holds the
loan's). Index: the payments' and the reversals' loan indexes."""

LEDGER_NET = _compose("""
SELECT payment_id, installment_id, component, direction, sum(amount)
FROM {allocations}
WHERE loan_id = %s
GROUP BY payment_id, installment_id, component, direction
""")
"""The ledger lines of loan ``%s`` added up by (payment, installment, component, direction):
what the books hold, for the replay to write only what differs (``_ledger_net``). Takes
no lock. Index: the ledger's loan index."""


@functools.cache
def installments_paid_update(*, rows: int) -> sql.SQL:
    """Write the paid columns, the paid time and the late fee of ``rows`` installments in one
    statement (so the checks see each row whole): parameters ``updated_at`` then, per row, (id,
    late fee paid, fee paid, interest paid, principal paid, paid_at, late fee, assessed at).
    Composed once per width. Locks: those installments' rows (the caller holds them). Index:
    the primary key."""
    row = sql.SQL(
        "(%s::bigint, %s::numeric, %s::numeric, %s::numeric, %s::numeric, %s::timestamptz,"
        " %s::numeric, %s::timestamptz)"
    )
    return _compose(
        """
UPDATE {installments} AS i
SET late_fee_paid = v.late_fee_paid, fee_paid = v.fee_paid, interest_paid = v.interest_paid,
    principal_paid = v.principal_paid, paid_at = v.paid_at, late_fee_amount = v.late_fee,
    late_fee_assessed_at = v.assessed_at, updated_at = %s
FROM (VALUES {rows}) AS v(id, late_fee_paid, fee_paid, interest_paid, principal_paid, paid_at,
                          late_fee, assessed_at)
WHERE i.id = v.id
""",
        rows=sql.SQL(", ").join([row] * rows),
    )


@functools.cache
def allocations_insert(*, rows: int) -> sql.SQL:
    """``bulk_create`` of ``rows`` ledger lines in one statement, without compiling a queryset
    (``insert_values`` of each, in order); composed once per width. Locks: the new rows only."""
    return _rendered(insert_sql(Allocation, rows=rows, returning=False))


# --- late fees ----------------------------------------------------------------------------

# The late fee an installment ``i`` of loan ``l`` owes if it is late: fixed, or a percent of the
# installment rounded half up to the currency's minor unit (%(places)s) and capped.
_FEE_IF_LATE = sql.SQL("""CASE l.late_fee_type
            WHEN 'fixed' THEN l.late_fee_value
            WHEN 'percent' THEN LEAST(l.late_fee_cap, ROUND(
                (i.principal_amount + i.interest_amount + i.fee_amount) * l.late_fee_value / 100,
                %(places)s))
            ELSE 0 END""")

FEE_REACH_FOR_PAYMENT = _compose(
    """
UPDATE {installments} AS i SET late_fee_charged = {fee_if_late}
FROM {loans} AS l
WHERE l.id = %(loan)s AND i.loan_id = l.id AND i.late_fee_charged IS NULL
  AND i.late_from <= %(until)s
RETURNING i.id, i.late_fee_charged
""",
    fee_if_late=_FEE_IF_LATE,
)
"""Reach the installments of loan ``%(loan)s`` late by the time money was received
(``%(until)s``), before that money is allocated: record the fee each owes if late
(``late_fee_charged``), so the replay then decides their fees as the fee run would have, and a
payoff received after an installment became late pays its fee first. Returns (id, fee).
Locks: those installments' rows (the caller holds the loan and its installments). Index:
``installment_fee_not_reached``."""

FEE_LOANS_LOCK = _compose("""
SELECT id FROM {loans} WHERE id IN (
    SELECT i.loan_id FROM {installments} AS i
    WHERE i.lender_id = %(lender)s AND i.late_fee_charged IS NULL AND i.late_from <= %(now)s)
  AND status = 'active'
ORDER BY id FOR NO KEY UPDATE
""")
"""Lock, in id order, the active loans of ``%(lender)s`` with installments the fee run reaches
by ``%(now)s`` (the loan before its installments: the global order). Money received after an
installment became late reached it when it was posted (``FEE_REACH_FOR_PAYMENT``), so a loan
paid off since owes nothing more here; a written-off loan accrues no fee. Locks: those loans'
rows, FOR NO KEY UPDATE. Index: ``installment_fee_not_reached`` (lender, late_from) where not
reached."""

FEE_REACH = _compose(
    """
WITH reached AS (
    SELECT i.id, {fee_if_late} AS fee,
        EXISTS (SELECT 1 FROM {payments} AS p
                WHERE p.loan_id = i.loan_id AND p.received_at >= i.late_from) AS replay,
        {unpaid} AS unpaid
    FROM {installments} AS i JOIN {loans} AS l ON l.id = i.loan_id
    WHERE i.loan_id = ANY(%(loans)s::bigint[]) AND i.late_fee_charged IS NULL
      AND i.late_from <= %(now)s
),
decided AS (SELECT id, fee, replay, NOT replay AND unpaid AND fee > 0 AS stands FROM reached)
UPDATE {installments} AS i
SET late_fee_charged = r.fee,
    late_fee_amount = CASE WHEN r.stands THEN r.fee ELSE i.late_fee_amount END,
    late_fee_assessed_at = CASE WHEN r.stands THEN i.late_from ELSE i.late_fee_assessed_at END,
    updated_at = %(now)s
FROM decided AS r
WHERE i.id = r.id
RETURNING i.id, i.loan_id, i.sequence, i.late_from, r.stands, r.fee, r.replay
""",
    fee_if_late=_FEE_IF_LATE,
    unpaid=_UNPAID_I,
)
"""Reach the late installments of the loans ``%(loans)s`` (locked by ``FEE_LOANS_LOCK``):
record the fee each one's terms charge if late. Where no money was received since the
installment became late (nearly always), what the rows show is what was paid before then, so
the fee stands exactly when the installment is unpaid, and no payment's allocation moves:
decided here, set-based. Otherwise (``replay``) the loan's payments are replayed
(``loan_books_reallocate``), which decides it. Returns (id, loan, sequence, late_from,
stands, fee, replay). Locks: those installments' rows. Index: ``installment_fee_not_reached``,
and the payments' loan index for the question of money received since."""


# --- provider webhooks ---------------------------------------------------------------------

WEBHOOK_EVENT_GET = _compose(
    "SELECT {columns} FROM {webhook_events} WHERE lender_id = %s AND provider = %s"
    " AND event_id = %s",
    columns=select_columns(WebhookEvent),
)
"""The stored event (lender, provider, event id), if any: read before the loan is locked, on
every delivery. Takes no lock. Index: ``webhook_event_once``."""

WEBHOOK_EVENT_INSERT = _rendered(insert_sql(WebhookEvent))
"""Store an applied event (``save(force_insert=True)``); a second copy raises IntegrityError
on ``webhook_event_once``. Returns its id. Locks: the new row."""

ATTEMPT_BY_REF = _compose(
    "SELECT {columns} FROM {attempts} WHERE lender_id = %s AND provider = %s"
    " AND attempt_ref = %s AND attempt_ref <> ''",
    columns=select_columns(PaymentAttempt),
)
"""The payment the lender started with ``provider`` that the provider knows by the id
``attempt_ref`` (an M-Pesa prompt's CheckoutRequestID), if any: at most one, by
``payment_attempt_ref_once``. Read on every callback that names one, before the loan is
locked. Takes no lock. Index: ``payment_attempt_ref_once`` (the condition repeated, so
the planner may use the partial index)."""

ATTEMPT_BY_KEY = _compose(
    "SELECT {columns} FROM {attempts} WHERE key = %s AND lender_id = %s AND provider = %s",
    columns=select_columns(PaymentAttempt),
)
"""The payment the lender started with ``provider`` under our own key (a UUID, in a Stripe
event's metadata), if any. Read on every callback that names one, before the loan is
locked. Takes no lock. Index: the unique index of ``key``."""


ATTEMPT_PAID_BY_QUERY = _compose(
    """
SELECT {columns} FROM {attempts} AS a JOIN {payments} AS p ON p.id = a.payment_id
WHERE a.loan_id = %(loan)s AND a.provider = %(provider)s AND a.status = {paid}
  AND a.receipt = '' AND p.provider_ref = a.attempt_ref AND a.amount = %(amount)s
  AND a.created_at >= %(since)s
ORDER BY a.created_at
LIMIT 1
""",
    columns=select_columns(PaymentAttempt, table="a"),
    paid=sql.Literal(PaymentAttempt.Status.PAID.value),
)
"""The oldest attempt of loan ``%(loan)s`` with ``%(provider)s`` for ``%(amount)s``, started
since ``%(since)s``, that the status query found paid (paid, its receipt unknown, its
payment keyed by the provider's id for the attempt): the money a paybill confirmation may
tell again under its receipt (``_paid_by_query``). Asked on every paybill confirmation that
names no attempt, under the loan's lock. Takes no lock. Index: the attempts' loan index,
the payments' primary key."""


ATTEMPT_SETTLE = _compose(
    """
UPDATE {attempts}
SET status = %(status)s, detail = %(detail)s, settled_at = %(settled_at)s,
    payment_id = %(payment)s, receipt = %(receipt)s, updated_at = %(settled_at)s
WHERE id = %(id)s
"""
)
"""Write where attempt ``%(id)s`` ended (its status, detail, the time, the payment that paid
it and its receipt): ``save(update_fields=...)`` of those fields, the caller holding the
attempt's lock (the loan's, then its own), in SQL written once, as a paid callback settles
its attempt every time. Locks: the attempt's row (held already). Index: the primary key."""


LENDER_ID_BY_SLUG = _compose("SELECT id FROM {lenders} WHERE slug = %s")
"""The id of the lender a callback's path or header names by its slug, if any: the first
read of every provider callback (the queryset cost more CPU to compile than the row to
read). Takes no lock. Index: the unique index of the slug."""


# --- the restriction sweep -----------------------------------------------------------------

ADVISORY_LOCK = sql.SQL("SELECT pg_advisory_xact_lock(%s, %s)")
"""Take the advisory lock (namespace, key) exclusive until the transaction ends: a sweep
range's (two sweeps of one range queue), or a lender's restriction lock for a suspension
starting (it waits for every sweep range and manual lock of the lender under way)."""

ADVISORY_LOCK_SHARED = sql.SQL("SELECT pg_advisory_xact_lock_shared(%s, %s)")
"""Take the advisory lock (namespace, key) shared until the transaction ends: the lender's
restriction lock, held by whoever may restrict (a sweep range, a manual lock)."""


def classify(*, where: sql.Composable, pauses: sql.Composable) -> sql.SQL:
    """The sweep's classification, for the statements here and the benchmark's floor: the CTEs (``ladder``, ``paused``, ``late``, ``placed``, ``classified``)
    for the loans ``l`` of ``where`` and the pauses ``p`` of ``pauses``.

    Each active loan (with consent, its phone not released) that is late: its days overdue
    past grace, whether a pause holds it today, the pinned ladder's step whose [days, next
    step's days) holds the days overdue (``wanted``), and its target stage: ``reminder`` at
    most when paused; and a step that blocks apps or locks only once the customer was sent a
    notice naming it (or a harsher one) and its date, confirmed (acknowledged by the phone, or
    accepted by the SMS provider) at least the country's notice days before the business date
    (``noticed_before``), in this spell of lateness (since the oldest unpaid due date); until
    then the ladder's highest step below it. ``unannounced``: no notice of it is on its way
    either (one is then sent). Joins, not per-loan subqueries, but for the notices of the
    loans whose step needs one (an index probe each). Index: ``installment_unpaid_by_loan``
    for the oldest unpaid installment; the pauses' and the notifications' indexes by loan.
    ``Ladder.stage_for`` is this rule for one loan (tests/collections/test_services_lock_notice.py,
    test_properties_restriction.py)."""
    return _compose(
        """
ladder AS (
    SELECT s.policy_version_id, s.days AS lo, s.action,
        lead(s.days) OVER (PARTITION BY s.policy_version_id ORDER BY s.days) AS hi
    FROM unnest(%(pv)s::bigint[], %(days)s::integer[], %(actions)s::text[])
        AS s(policy_version_id, days, action)
),
paused AS (
    SELECT DISTINCT p.loan_id FROM {pauses} AS p
    WHERE {pauses_where} AND p.status = 'active' AND p.starts_on <= %(bd)s AND %(bd)s <= p.ends_on
),
late AS (
    SELECT l.id, l.stage, l.policy_version_id, l.customer_id, l.xmin AS seen,
           oldest.due_date AS oldest_due,
           CASE WHEN %(bd)s::date - oldest.due_date > l.grace_days
                THEN %(bd)s::date - oldest.due_date ELSE 0 END AS days
    FROM {loans} AS l
    CROSS JOIN LATERAL (  -- the oldest unpaid installment: one entry of the unpaid index
        SELECT i.due_date FROM {installments} AS i
        WHERE i.loan_id = l.id AND {unpaid} ORDER BY i.due_date LIMIT 1
    ) AS oldest
    WHERE {where} AND l.status = 'active' AND l.consent_id IS NOT NULL
      AND l.collateral_released_at IS NULL  -- a phone released at payoff is free for good
),
placed AS (
    SELECT t.*, s.action AS wanted, p.loan_id IS NOT NULL AS paused,
        s.action IN {notice_in} AND p.loan_id IS NULL AS needs_notice,
        n.noticed, n.announced
    FROM late AS t
    LEFT JOIN ladder AS s ON s.policy_version_id = t.policy_version_id
        AND s.lo <= t.days AND (s.hi IS NULL OR t.days < s.hi)
    LEFT JOIN paused AS p ON p.loan_id = t.id
    LEFT JOIN LATERAL (  -- the harshest stage announced: confirmed in time, and at all
        SELECT coalesce(max({rank_announced}) FILTER (
                   WHERE coalesce(x.acked_at, x.sent_at) < %(noticed_before)s
                     AND x.announces_on <= %(bd)s), 0) AS noticed,
               coalesce(max({rank_announced}), 0) AS announced
        FROM {notifications} AS x
        WHERE s.action IN {notice_in} AND p.loan_id IS NULL
          AND x.loan_id = t.id AND x.announces_stage <> ''
          AND x.created_at >= t.oldest_due::timestamp AT TIME ZONE %(tz)s
          AND x.status NOT IN ('suppressed', 'opted_out', 'failed')
    ) AS n ON true
    WHERE t.days > 0
),
classified AS (
    SELECT t.id, t.stage, t.policy_version_id, t.customer_id, t.days, t.seen, t.paused,
        CASE WHEN t.paused AND {rank_wanted} > {rank_reminder}
                 THEN 'reminder'
             WHEN t.needs_notice AND t.noticed < {rank_wanted}
                 THEN coalesce(c.action, 'none')
             ELSE coalesce(t.wanted, 'none') END AS target,
        t.needs_notice AND t.announced < {rank_wanted} AS unannounced, t.wanted,
        t.noticed
    FROM placed AS t
    LEFT JOIN LATERAL (  -- held for its notice: the ladder's highest step it may reach
        SELECT c.action FROM ladder AS c
        WHERE t.needs_notice AND t.noticed < {rank_wanted}
          AND c.policy_version_id = t.policy_version_id AND c.lo <= t.days
          AND {rank_step} <= greatest(t.noticed, {rank_alarm})
        ORDER BY c.lo DESC LIMIT 1
    ) AS c ON true
)
""",
        where=where,
        pauses_where=pauses,
        unpaid=_UNPAID_I,
        notice_in=_NOTICE_IN,
        rank_announced=_rank("x.announces_stage"),
        rank_wanted=_rank("t.wanted"),
        rank_reminder=_rank("'reminder'"),
        rank_step=_rank("c.action"),
        rank_alarm=_rank("'alarm'"),
    )


_RANGE = sql.SQL(
    "l.lender_id = %(lender)s AND l.id >= %(lo)s AND l.id < %(hi)s AND l.stage <> 'lock'"
)
_IDS = sql.SQL("l.lender_id = %(lender)s AND l.id = ANY(%(ids)s::bigint[]) AND l.stage <> 'lock'")
_RANGE_PAUSES = sql.SQL("p.lender_id = %(lender)s AND p.loan_id >= %(lo)s AND p.loan_id < %(hi)s")
# each raised loan with its enrolled phone and its customer's language
_RAISED_WITH = _compose("""
SELECT c.*, d.id AS device_id, cu.locale FROM changed AS c
LEFT JOIN {devices} AS d ON d.loan_id = c.id AND d.status = 'enrolled'
LEFT JOIN {customers} AS cu ON cu.id = c.customer_id
""")
_NOT_RAISED_TODAY = _compose("""NOT EXISTS (
    SELECT 1 FROM {stage_changes} AS h
    WHERE h.loan_id = l.id AND h.business_date = %(bd)s AND h.cause = 'sweep')""")
STAGE_RISES = sql.SQL("{} > {}").format(_rank("c.target"), _rank("c.stage"))
"""The condition that the classified loan ``c`` must rise: its target ranks above its stage."""

PAUSE_ENDS_LOCK = _compose(
    """
SELECT id FROM {loans} WHERE id IN (
    SELECT loan_id FROM {pauses} AS p
    WHERE {range_pauses} AND p.status IN ('requested', 'active') AND p.ends_on < %(bd)s)
ORDER BY id FOR NO KEY UPDATE
""",
    range_pauses=_RANGE_PAUSES,
)
"""Lock, in id order, the loans of the range whose pause ends before the business date
(before the pauses are closed: the global order takes the loan before its pause). Locks:
those loans' rows, FOR NO KEY UPDATE. Index: the loans' primary key (a range's pauses are
few: any of the pauses' indexes by loan finds them)."""

RAISE_RANGE = _compose(
    """
WITH {classify},
acting AS MATERIALIZED (
    SELECT * FROM classified
    WHERE {rank_target} > {rank_stage} OR unannounced
),
changed AS (
    UPDATE {loans} AS l
    SET stage = c.target, stage_changed_at = %(now)s, updated_at = %(now)s
    FROM acting AS c
    WHERE l.id = c.id AND {rises}
      AND l.xmin = c.seen AND l.stage = c.stage AND {not_raised_today}
    RETURNING l.id, c.stage, c.target, c.days, c.policy_version_id, c.customer_id, c.paused,
        c.noticed
)
SELECT raised.*, 'raised' AS kind FROM ({raised_with}) AS raised
UNION ALL
SELECT id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'again' FROM acting
WHERE {rank_target} > {rank_stage} AND id NOT IN (SELECT id FROM changed)
UNION ALL
SELECT id, NULL, wanted, days, NULL, NULL, NULL, NULL, NULL, NULL, 'unannounced' FROM acting
WHERE unannounced AND id NOT IN (SELECT id FROM changed)
ORDER BY 1
""",
    classify=classify(where=_RANGE, pauses=_RANGE_PAUSES),
    rank_target=_rank("target"),
    rank_stage=_rank("stage"),
    rises=STAGE_RISES,
    not_raised_today=_NOT_RAISED_TODAY,
    raised_with=_RAISED_WITH,
)
"""Classify the loans of one lender's id range [``%(lo)s``, ``%(hi)s``) (``classify``) and
raise, in the same statement, each loan that must rise and whose row is still the version
classified (``xmin``): a payment, a reversal or a pause committed meanwhile wrote the row too
(the installment and pause triggers), so the update skips it; a loan raised by a sweep today
is not raised again (``stage_change_one_sweep_per_day``). Returns the raised loans (kind
``raised``, with the phone and language), the rising ones skipped (``again``: to be locked and
classified again) and those not raised that wait for a notice no one has sent
(``unannounced``, with the stage and days). Locks: the raised loans' rows, as the update
reaches them (the caller holds the range's advisory lock). Index: ``loan_active_by_id``
(lender, id) where active, and ``classify``'s."""

IDS_LOCK = _compose(
    "SELECT id FROM {loans} WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id FOR NO KEY UPDATE"
)
"""Lock the loans ``%(ids)s`` in id order (those ``RAISE_RANGE`` skipped as written since).
Locks: their rows, FOR NO KEY UPDATE. Index: the primary key."""

SWEEP_AGAIN = _compose(
    """
WITH {classify},
changed AS (
    UPDATE {loans} AS l
    SET stage = c.target, stage_changed_at = %(now)s, updated_at = %(now)s
    FROM classified AS c
    WHERE l.id = c.id AND l.stage = c.stage AND l.status = 'active'
      AND {rises} AND {not_raised_today}
    RETURNING l.id, c.stage, c.target, c.days, c.policy_version_id, c.customer_id, c.paused,
        c.noticed
)
{raised_with}
""",
    classify=classify(where=_IDS, pauses=sql.SQL("p.loan_id = ANY(%(ids)s::bigint[])")),
    rises=STAGE_RISES,
    not_raised_today=_NOT_RAISED_TODAY,
    raised_with=_RAISED_WITH,
)
"""Classify again, with this statement's snapshot, the loans ``%(ids)s`` locked already
(``IDS_LOCK``), and raise those that must rise; returns them as ``RAISE_RANGE``'s raised rows.
Locks: none more. Index: the loans' primary key, and ``classify``'s."""

SWEEP_FORECAST = _compose(
    """
WITH {classify}
SELECT c.id, l.reference, s.name, c.stage, c.target, c.days
FROM classified AS c
JOIN {loans} AS l ON l.id = c.id
LEFT JOIN {shops} AS s ON s.id = l.shop_id
WHERE {rises} AND {not_raised_today}
ORDER BY c.id
""",
    classify=classify(where=_RANGE, pauses=_RANGE_PAUSES),
    rises=STAGE_RISES,
    not_raised_today=_NOT_RAISED_TODAY,
)
"""What ``RAISE_RANGE`` would raise in the range on ``%(bd)s``, without raising it: the same
classification and the same condition to rise, as a SELECT. Each loan with its reference,
its shop's name, its stage and the stage it would reach, and its days overdue. Takes no lock
(``sweep_forecast`` runs it in a read-only transaction it rolls back). Index: as
``RAISE_RANGE``."""

READ_ONLY = sql.SQL("SET TRANSACTION READ ONLY")
"""Make the current transaction (or savepoint's) refuse every write until it ends."""

CLASSIFY_ONE = _compose(
    "WITH {classify} SELECT days, paused, target, noticed FROM classified",
    classify=classify(where=sql.SQL("l.id = %(loan)s"), pauses=sql.SQL("p.loan_id = %(loan)s")),
)
"""The sweep's classification of the loan ``%(loan)s`` alone: (days overdue past grace,
paused, target stage, the rank of the harshest stage noticed in time); no row when the loan is
not late. Takes no lock (settling and an agent's move hold the loan's). Index: the loans'
primary key, and ``classify``'s."""

STAGE_HISTORY_INSERT = _compose("""
INSERT INTO {stage_changes}
    (lender_id, loan_id, from_stage, to_stage, cause, days_overdue, business_date,
     policy_version_id, device_version, created_at, updated_at)
SELECT %(lender)s, h.loan, h.f, h.t, %(cause)s, h.d, %(bd)s, h.pv, h.v, %(now)s, %(now)s
FROM unnest(%(loans)s::bigint[], %(froms)s::text[], %(tos)s::text[], %(ds)s::integer[],
            %(pvs)s::bigint[], %(vs)s::integer[]) AS h(loan, f, t, d, pv, v)
""")
"""The history row of each stage change, from parallel arrays (loan, from, to, days, policy
version, phone state version). Locks: the new rows; a second sweep row for a loan and day
fails on ``stage_change_one_sweep_per_day``."""

STAGE_AUDIT_ROWS = sql.SQL("""
SELECT n, loan::text AS target_id, jsonb_build_object(
    'stage', jsonb_build_object('old', f, 'new', t), 'cause', %(cause)s::text,
    'days_overdue', d, 'business_date', %(bd)s::text, 'policy_version_id', pv,
    'paused', p, 'device_id', device, 'device_version', v) AS data
FROM unnest(%(loans)s::bigint[], %(froms)s::text[], %(tos)s::text[], %(ds)s::integer[],
            %(pvs)s::bigint[], %(paused)s::boolean[], %(devices)s::bigint[], %(vs)s::integer[])
    WITH ORDINALITY AS c(loan, f, t, d, pv, p, device, v, n)
""")
"""The audit event of each stage change, built in SQL from the same arrays as the history:
(n, target id, data), the rows ``audit_events_record_select`` appends to the chain. Reads no
table, takes no lock."""

PAUSES_CLOSE = _compose(
    """
UPDATE {pauses} AS p
SET status = CASE
        WHEN p.status = 'requested' THEN 'ended'
        WHEN p.kind <> 'promise' THEN 'ended'
        WHEN EXISTS (SELECT 1 FROM {installments} AS i
                     WHERE i.loan_id = p.loan_id AND {unpaid}
                       AND i.due_date <= p.starts_on) THEN 'broken'
        ELSE 'kept' END,
    closed_at = %(now)s, updated_at = %(now)s
WHERE p.lender_id = %(lender)s AND p.loan_id >= %(lo)s AND p.loan_id < %(hi)s
  AND p.status IN ('requested', 'active') AND p.ends_on < %(bd)s
RETURNING p.id, p.loan_id, p.kind, p.status
""",
    unpaid=_UNPAID_I,
)
"""Close the range's pauses that ended before the business date: a request never decided or
a pause ``ended``; a promise ``broken`` if an installment due by its start is still unpaid,
else ``kept``. Returns (id, loan, kind, status). Locks: those pauses' rows (their loans are
locked first, ``PAUSE_ENDS_LOCK``). Index: the pauses' by loan (a range's pauses are few: any
of them finds them), and the installments' by loan for the promise's question."""

RELEASED_STAGED = _compose("""
SELECT id, stage, policy_version_id, customer_id FROM {loans}
WHERE lender_id = %(lender)s AND id >= %(lo)s AND id < %(hi)s
  AND status = 'active' AND collateral_released_at IS NOT NULL AND stage <> 'none'
ORDER BY id FOR NO KEY UPDATE
""")
"""Loans of the range off the ladder for good (their phone released at payoff, the loan
reopened since) that still claim a stage, which their phone can never take (rows from before
the ladder knew of it). Locks: those loans' rows in id order, FOR NO KEY UPDATE. Index:
``loan_released_active`` (lender, id) where active and released."""

LOANS_STAGE_NONE = _compose(
    "UPDATE {loans} SET stage = 'none', stage_changed_at = %s, updated_at = %s"
    " WHERE id = ANY(%s::bigint[])"
)
"""Bring the loans of the array (``RELEASED_STAGED``'s, locked) to no stage at the time given.
Index: the primary key."""

RAISED = _compose("""
SELECT h.loan_id, l.customer_id, h.days_overdue, h.policy_version_id, h.to_stage,
    EXISTS (SELECT 1 FROM {pauses} AS p
            WHERE p.loan_id = h.loan_id AND p.status = 'active'
              AND p.starts_on <= h.business_date AND h.business_date <= p.ends_on) AS paused
FROM {stage_changes} AS h
JOIN {loans} AS l ON l.id = h.loan_id
WHERE h.lender_id = %(lender)s AND h.business_date = %(bd)s AND h.cause = 'sweep'
  AND h.loan_id >= %(lo)s AND h.loan_id < %(hi)s AND l.stage = h.to_stage
ORDER BY h.loan_id
""")
"""The loans of a range the sweep of ``%(bd)s`` raised and that are still at that stage (not
paid down since), with their customer, days, policy version, stage and whether a pause holds
them: the overdue notices to queue. Takes no lock. Index: ``stage_change_one_sweep_per_day``
(loan, business date) where the cause is the sweep."""

RANGE_STARTS = _compose("""
SELECT id FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM {loans} WHERE lender_id = %s AND status = 'active'
) AS numbered
WHERE (n - 1) %% %s = 0 ORDER BY id
""")
"""The first id of each slice of ``size`` active loans of a lender, in id order: the sweep's
ranges, counted, not spanned. Takes no lock. Index: ``loan_active_by_id`` (lender, id) where
active."""


# --- suspensions ---------------------------------------------------------------------------

SUSPENSION_RESTRICTED = _compose(
    """
SELECT l.id, l.stage, l.policy_version_id, l.customer_id, coalesce((
    SELECT CASE WHEN %(bd)s::date - min(i.due_date) > l.grace_days
                THEN %(bd)s::date - min(i.due_date) ELSE 0 END
    FROM {installments} AS i
    WHERE i.loan_id = l.id AND {unpaid}), 0)
FROM {loans} AS l
WHERE l.lender_id = %(lender)s AND l.status = 'active' AND {rank} > %(above)s
ORDER BY l.id FOR NO KEY UPDATE OF l
""",
    unpaid=_UNPAID_I,
    rank=_rank("l.stage"),
)
"""The lender's active loans restricted beyond ``%(above)s`` (a rank in ``%(order)s``), each
with its stage, policy version, customer and days overdue past grace (for the history and
what the phone shows). Locks: those loans' rows in id order, FOR NO KEY UPDATE. Index:
``loan_active_by_id`` (lender, id) where active, and ``installment_unpaid_by_loan`` for the
days."""

LOANS_STAGE_REMINDER = _compose(
    "UPDATE {loans} SET stage = 'reminder', stage_changed_at = %s, updated_at = %s"
    " WHERE id = ANY(%s::bigint[])"
)
"""Lower the loans of the array (``SUSPENSION_RESTRICTED``'s, locked) to ``reminder`` at the
time given. Index: the primary key."""


# --- locks -------------------------------------------------------------------------------

LOAN_LOCK_BY_REFERENCE = _compose(
    "SELECT {columns} FROM {loans} WHERE lender_id = %s AND reference = %s FOR UPDATE",
    columns=select_columns(Loan),
)
"""Find and lock a lender's loan by its reference in one query (the webhook's first lock, on
every call: compiling the queryset costs more CPU than running it). Locks: the loan's row,
FOR UPDATE, as ``loan_lock``. Index: ``loan_reference_unique_per_lender``."""

LOAN_LOCK = _compose(
    "SELECT {columns} FROM {loans}"
    " WHERE id = %(loan)s AND lender_id = coalesce(%(lender)s, lender_id) FOR UPDATE",
    columns=select_columns(Loan),
)
"""Lock loan ``%(loan)s``, only if it is lender ``%(lender)s``'s (any lender's when that is
NULL): ``loan_lock``, the first lock of every write to a loan, in SQL written once, where
the queryset cost more CPU to compile than the lock to take. Locks: the loan's row, FOR
UPDATE. Index: the loans' primary key."""


@functools.cache
def loan_row_lock(model: type[Model]) -> sql.SQL:
    """Lock the row of ``model`` (a table with ``loan_id``) with id ``%s`` if it belongs to loan
    ``%s`` (take the loan first: the global order), for ``loan_lock_with_row``; composed once
    per model. Locks: that row, FOR UPDATE. Index: the table's primary key."""
    return _rendered(
        sql.SQL("SELECT {} FROM {} WHERE id = %s AND loan_id = %s FOR UPDATE").format(
            select_columns(model), _table(model)
        )
    )


INSTALLMENTS_LOCK = _compose(
    "SELECT {columns} FROM {installments} WHERE loan_id = %s ORDER BY id FOR UPDATE",
    columns=select_columns(Installment),
)
"""Lock a loan's installments in id order (take the loan first), the rows and lock strength of
``installment_lock_for_loan``. Locks: the installments' rows, FOR UPDATE. Index: the
installments' loan index."""


# --- selectors ---------------------------------------------------------------------------

# the country's notice days (country_rules.COUNTRY_RULES), the table's values written in
_NOTICE_DAYS = sql.SQL("CASE le.country {} ELSE {} END").format(
    sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(country), sql.Literal(rule.lock_notice_days))
        for country, rule in sorted(COUNTRY_RULES.items())
    ),
    sql.Literal(DEFAULT_RULE.lock_notice_days),
)

LOCK_NOTICED_BY = _compose(
    """EXISTS (
    SELECT 1 FROM {notifications} AS x
    JOIN {lenders} AS le ON le.id = {loans}.lender_id
    WHERE x.loan_id = {loans}.id AND x.announces_stage = 'lock'
      AND x.status IN ('acked', 'sms', 'whatsapp') AND x.announces_on <= %s
      AND (coalesce(x.acked_at, x.sent_at) AT TIME ZONE le.timezone)::date
          <= %s::date - {notice_days}
      AND x.created_at >= ((SELECT min(i.due_date) FROM {installments} AS i
                           WHERE i.loan_id = {loans}.id
                             AND {unpaid})::timestamp AT TIME ZONE le.timezone))""",
    notice_days=_NOTICE_DAYS,
    unpaid=_UNPAID_I,
)
"""The sweep's notice rule for a lock on ``%s`` (tomorrow, given twice), for the loan of the
outer query (a condition of the lock-tomorrow work queue): a notice of the lock, naming a date
by then, confirmed at least the country's notice days before it, in this spell of lateness
(since the oldest unpaid due date, in the lender's time). Takes no lock. Index:
``notification_announces`` (loan, created_at), ``installment_unpaid_by_loan``."""

PAYMENT_RECEIPT = _compose(
    """
SELECT p.amount, p.receipt_ref, l.id, l.lender_id, l.customer_id, l.currency,
    (SELECT coalesce(sum({owed}), 0) FROM {installments} AS i WHERE i.loan_id = l.id)
FROM {payments} AS p JOIN {loans} AS l ON l.id = p.loan_id
WHERE p.id = %s
""",
    owed=_OWED_I,
)
"""What the receipt of payment ``%s`` says: its amount and receipt reference, its loan (id,
lender, customer, currency) and what the loan still owes (``loan_outstanding``: every
component of every installment less what is paid). Read once per payment, after it
commits: one statement written once, where the two querysets cost more to compile than
to run. Takes no lock. Index: the payments' and the loans' primary keys, the installments'
loan index."""


# --- the portfolio dashboard ---------------------------------------------------------------

PAR_DAYS = (1, 7, 30, 60)

# Per active loan of ``%(lender)s``: outstanding, and days since the oldest unpaid installment
# fell due (as of ``%(on)s``).
_LOAN_POSITION = _compose(
    """
SELECT l.id, l.shop_id, date_trunc('month', l.start_date)::date AS sold_in,
    sum({owed}) AS outstanding,
    coalesce(%(on)s::date - min(i.due_date) FILTER (WHERE {unpaid} AND i.due_date < %(on)s), 0) AS days
FROM {loans} AS l JOIN {installments} AS i ON i.loan_id = l.id
WHERE l.lender_id = %(lender)s AND l.status = 'active'
GROUP BY l.id
""",
    owed=_OWED_I,
    unpaid=_UNPAID_I,
)

STAGE_COUNTS = _compose(
    "SELECT stage, count(*) FROM {loans} WHERE lender_id = %(lender)s "
    "AND status = 'active' GROUP BY stage"
)
"""The lender's active loans by stage. Takes no lock. Index: ``loan_active_by_id``."""

PAR = _compose(
    "SELECT coalesce(sum(outstanding), 0), {sums} FROM ({position}) AS p",
    sums=sql.SQL(", ").join(
        sql.SQL("coalesce(sum(outstanding) FILTER (WHERE days > {}), 0)").format(sql.Literal(n))
        for n in PAR_DAYS
    ),
    position=_LOAN_POSITION,
)
"""Portfolio at risk as of ``%(on)s``: the gross outstanding of the lender's active loans and,
for each of ``PAR_DAYS``, the outstanding of those more than that many days late. Takes no
lock. Index: ``loan_active_by_id``, then the installments' loan index."""

PAR30_BY_SHOP = _compose(
    """
        SELECT coalesce(min(s.name), '-'), count(*), sum(p.outstanding),
               coalesce(sum(p.outstanding) FILTER (WHERE p.days > 30), 0), p.shop_id::text
        FROM ({position}) AS p LEFT JOIN {shops} AS s ON s.id = p.shop_id
        GROUP BY p.shop_id ORDER BY 1""",
    position=_LOAN_POSITION,
)
"""PAR30 by shop of sale: (shop name, loans, gross, more than 30 days late, shop id). Takes
no lock.
Index: as ``PAR``."""

PAR30_BY_MONTH_OF_SALE = _compose(
    """
        SELECT to_char(p.sold_in, 'YYYY-MM'), count(*), sum(p.outstanding),
               coalesce(sum(p.outstanding) FILTER (WHERE p.days > 30), 0),
               to_char(p.sold_in, 'YYYY-MM')
        FROM ({position}) AS p GROUP BY 1, 5 ORDER BY 1""",
    position=_LOAN_POSITION,
)
"""PAR30 by month of sale: (YYYY-MM, loans, gross, more than 30 days late, YYYY-MM again as
its key). Takes no lock.
Index: as ``PAR``."""


def _bucket(days: LiteralString) -> sql.Composed:
    """The index in ``portfolio.BUCKETS`` of a number of days late, in SQL."""
    return sql.SQL(
        "CASE WHEN {d} <= 0 THEN 0 WHEN {d} <= 30 THEN 1 WHEN {d} <= 60 THEN 2 "
        "WHEN {d} <= 90 THEN 3 ELSE 4 END"
    ).format(d=sql.SQL(days))


ROLL_RATES = _compose(
    """
WITH at_dates AS (
    SELECT l.id,
        coalesce(%(a)s::date - min(i.due_date) FILTER (
            WHERE i.due_date < %(a)s AND (i.paid_at IS NULL OR i.paid_at >= %(a_end)s)), 0) AS da,
        coalesce(%(b)s::date - min(i.due_date) FILTER (
            WHERE i.due_date < %(b)s AND (i.paid_at IS NULL OR i.paid_at >= %(b_end)s)), 0) AS db
    FROM {loans} AS l JOIN {installments} AS i ON i.loan_id = l.id
    WHERE l.lender_id = %(lender)s AND l.status IN ('active', 'paid_off')
      AND l.start_date <= %(a)s AND (l.paid_off_at IS NULL OR l.paid_off_at >= %(b_end)s)
    GROUP BY l.id
)
SELECT {bucket_a} AS f, {bucket_b} AS t, count(*)
FROM at_dates GROUP BY 1, 2
""",
    bucket_a=_bucket("da"),
    bucket_b=_bucket("db"),
)
"""Roll rates: each loan active at both dates ``%(a)s`` and ``%(b)s``, its bucket of days late
at each (installments unpaid at the end of the date), counted by (bucket at a, bucket at b).
Takes no lock. Index: ``loan_lender_status_idx``, then the installments' loan index."""

CURE_RATES = _compose("""
SELECT r.to_stage, count(*),
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM {stage_changes} AS d
        WHERE d.loan_id = r.loan_id AND d.id > r.id AND d.cause IN ('payment', 'payoff')
          AND d.created_at <= r.created_at + %(window)s
          AND array_position(%(order)s::text[], d.to_stage) < array_position(%(order)s::text[], r.to_stage)))
FROM {stage_changes} AS r
WHERE r.lender_id = %(lender)s AND r.cause = 'sweep' AND r.created_at <= %(now)s - %(window)s
GROUP BY r.to_stage
""")
"""Cure rates by stage: the sweep's raises at least ``%(window)s`` old, and how many of them a
payment lowered within that window. Takes no lock. Index: ``stage_change_day`` (lender,
business date) for the raises, the history's loan index for the cures."""

UNLOCK_TIMES = _compose(
    """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds), count(*)
FROM (
    SELECT extract(epoch FROM min(a.occurred_at) - h.created_at) AS seconds
    FROM {stage_changes} AS h
    JOIN {devices} AS d ON d.loan_id = h.loan_id
    JOIN {audit_events} AS a ON a.target_type = {device_type} AND a.target_id = d.id::text
         AND a.action = {acknowledged} AND (a.data -> 'version' ->> 'new')::int >= h.device_version
         AND a.occurred_at >= h.created_at
    WHERE h.lender_id = %(lender)s AND h.cause IN ('payment', 'payoff') AND h.from_stage <> 'none'
      AND h.device_version IS NOT NULL
    GROUP BY h.id
) AS unlocks
""",
    device_type=sql.Literal(Device._meta.label_lower),
    acknowledged=sql.Literal(str(DevicesAction.STATE_ACKNOWLEDGED)),
)
"""Seconds from a payment lowering a phone's stage to the phone acknowledging that state (the
first acknowledgement of its version): median, 95th percentile and count. Takes no lock.
Index: the phones' loan index, and the audit events' by target."""

# --- conversion by trigger (the dashboard) -------------------------------------------------

CONVERSION = _compose(
    """
WITH touches AS (
    SELECT CASE WHEN n.kind = 'funds' THEN 'funds' ELSE 'reminder' END AS trigger,
           n.customer_id, min(coalesce(n.sent_at, n.pushed_at)) AS at
    FROM {notifications} AS n
    WHERE n.lender_id = %(lender)s AND n.kind IN ('due_soon', 'due_today', 'overdue', 'notice', 'funds')
      AND coalesce(n.sent_at, n.pushed_at) >= %(since)s
      AND coalesce(n.sent_at, n.pushed_at) < %(until)s
    GROUP BY 1, 2
    UNION ALL
    SELECT 'voice', v.customer_id, min(v.called_at)
    FROM {voice_calls} AS v
    WHERE v.lender_id = %(lender)s AND v.status = 'answered'
      AND v.called_at >= %(since)s AND v.called_at < %(until)s
    GROUP BY 1, 2
)
SELECT t.trigger, count(*),
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM {payments} AS p JOIN {loans} AS l ON l.id = p.loan_id
        WHERE p.lender_id = %(lender)s AND l.customer_id = t.customer_id
          AND p.received_at > t.at AND p.received_at <= t.at + interval '24 hours')),
    count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM {payments} AS p JOIN {loans} AS l ON l.id = p.loan_id
        WHERE p.lender_id = %(lender)s AND l.customer_id = t.customer_id
          AND p.received_at > t.at AND p.received_at <= t.at + interval '7 days'))
FROM touches AS t
GROUP BY t.trigger
""",
    voice_calls=_table(VoiceCall),
)
"""Per trigger (a scheduled reminder or notice sent, a funds alert's link sent, a reminder call
answered): the customers first reached by it between ``%(since)s`` and ``%(until)s``, and how
many of them paid (any loan of theirs at the lender) within 24 hours and within 7 days of
that first touch. Takes no lock."""
