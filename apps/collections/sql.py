"""Hand-written SQL of collections, one named statement each: the hot paths and the set-based
work the ORM would do row by row."""

from __future__ import annotations

from apps.collections.models import (
    UNPAID_SQL,
    Installment,
    Loan,
    LoanPause,
    LoanStageChange,
    Payment,
    WebhookEvent,
)
from apps.core.sql import insert_sql
from apps.customers.models import Customer
from apps.devices.models import Device
from apps.notifications.models import Notification

# Idempotency without a read first: the unique constraint answers "already
# there?" in the same statement that stores the payment. Under the loan lock a
# conflict can only come from a payment that has committed (or from another
# loan's transaction, which we then wait for), so the follow-up read sees it.
PAYMENT_INSERT = insert_sql(Payment, conflict=("lender_id", "provider", "provider_ref"))


# Both questions a new payment asks before it is stored, in one round trip of
# SQL written once (it runs on every payment). Payments sort by (received_at,
# provider, provider_ref), the order allocate() replays them in; a strict ">"
# on that key cannot match the new payment itself (the reference is unique).
PAYMENT_POSITION = """
SELECT
    EXISTS (
        SELECT 1 FROM collections_paymentreversal
        WHERE lender_id = %(lender)s AND provider = %(p)s AND payment_provider_ref = %(r)s
          AND loan_id <> %(loan)s
    ),
    NOT EXISTS (
        SELECT 1 FROM collections_payment
        WHERE loan_id = %(loan)s AND (received_at, provider, provider_ref) > (%(t)s, %(p)s, %(r)s)
    ) AND NOT EXISTS (
        SELECT 1 FROM collections_paymentreversal
        WHERE loan_id = %(loan)s AND provider = %(p)s AND payment_provider_ref = %(r)s
    ) AND NOT EXISTS (
        SELECT 1 FROM collections_installment
        WHERE loan_id = %(loan)s AND late_fee_charged > 0 AND late_from > %(t)s
    )
"""


INSTALLMENTS_PAID_UPDATE = """
UPDATE collections_installment AS i
SET late_fee_paid = v.late_fee_paid, fee_paid = v.fee_paid, interest_paid = v.interest_paid,
    principal_paid = v.principal_paid, paid_at = v.paid_at, late_fee_amount = v.late_fee,
    late_fee_assessed_at = v.assessed_at, updated_at = %s
FROM (VALUES {rows}) AS v(id, late_fee_paid, fee_paid, interest_paid, principal_paid, paid_at,
                          late_fee, assessed_at)
WHERE i.id = v.id
"""


# The late fee an installment ``i`` of loan ``l`` owes if it is late: fixed, or a percent of the
# installment rounded half up to the currency's minor unit (%(places)s) and capped.
_FEE_IF_LATE = """CASE l.late_fee_type
            WHEN 'fixed' THEN l.late_fee_value
            WHEN 'percent' THEN LEAST(l.late_fee_cap, ROUND(
                (i.principal_amount + i.interest_amount + i.fee_amount) * l.late_fee_value / 100,
                %(places)s))
            ELSE 0 END"""


# Reach the installments of one loan late by the time money was received (``%(until)s``),
# before that money is allocated: the replay then decides their fees as the fee run would
# have, and a payoff received after an installment became late pays its fee first.
FEE_REACH_FOR_PAYMENT = f"""
UPDATE {Installment._meta.db_table} AS i SET late_fee_charged = {_FEE_IF_LATE}
FROM {Loan._meta.db_table} AS l
WHERE l.id = %(loan)s AND i.loan_id = l.id AND i.late_fee_charged IS NULL
  AND i.late_from <= %(until)s
RETURNING i.id, i.late_fee_charged
"""  # noqa: S608  (table names from model metadata; values are parameters)


# Lock, in id order, the active loans with installments the fee run reaches now (the loan
# before its installments: the global order). Money received after an installment became late
# reached it when it was posted (``FEE_REACH_FOR_PAYMENT``), so a loan paid off since owes
# nothing more here; a written-off loan accrues no fee.
FEE_LOANS_LOCK = f"""
SELECT id FROM {Loan._meta.db_table} WHERE id IN (
    SELECT i.loan_id FROM {Installment._meta.db_table} AS i
    WHERE i.lender_id = %(lender)s AND i.late_fee_charged IS NULL AND i.late_from <= %(now)s)
  AND status = 'active'
ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608  (table names from model metadata; values are parameters)


# Reach them: record the fee each one's terms charge if late (fixed, or a percent of the
# installment rounded half up to the currency's minor unit and capped). Where no money was
# received since the installment became late (nearly always), what the rows show is what was
# paid before then, so the fee stands exactly when the installment is unpaid, and no payment's
# allocation moves: decided here, set-based. Otherwise (``replay``) the loan's payments are
# replayed (``loan_books_reallocate``), which decides it.
FEE_REACH = f"""
WITH reached AS (
    SELECT i.id, {_FEE_IF_LATE} AS fee,
        EXISTS (SELECT 1 FROM {Payment._meta.db_table} AS p
                WHERE p.loan_id = i.loan_id AND p.received_at >= i.late_from) AS replay,
        {UNPAID_SQL.format(t="i")} AS unpaid
    FROM {Installment._meta.db_table} AS i JOIN {Loan._meta.db_table} AS l ON l.id = i.loan_id
    WHERE i.loan_id = ANY(%(loans)s::bigint[]) AND i.late_fee_charged IS NULL
      AND i.late_from <= %(now)s
),
decided AS (SELECT id, fee, replay, NOT replay AND unpaid AND fee > 0 AS stands FROM reached)
UPDATE {Installment._meta.db_table} AS i
SET late_fee_charged = r.fee,
    late_fee_amount = CASE WHEN r.stands THEN r.fee ELSE i.late_fee_amount END,
    late_fee_assessed_at = CASE WHEN r.stands THEN i.late_from ELSE i.late_fee_assessed_at END,
    updated_at = %(now)s
FROM decided AS r
WHERE i.id = r.id
RETURNING i.id, i.loan_id, i.sequence, i.late_from, r.stands, r.fee, r.replay
"""  # noqa: S608  (as above)


# The event's two statements as SQL written once: they run on every delivery.
WEBHOOK_EVENT_GET = (
    "SELECT * FROM collections_webhookevent"
    " WHERE lender_id = %s AND provider = %s AND event_id = %s"
)


WEBHOOK_EVENT_INSERT = insert_sql(WebhookEvent)


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
PAUSE_ENDS_LOCK = f"""
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
RAISE_RANGE = f"""
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


IDS_LOCK = f"SELECT id FROM {Loan._meta.db_table} WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id FOR NO KEY UPDATE"  # noqa: S608


# Classify again, with this statement's snapshot, loans locked already, and raise those
# that must rise.
SWEEP_AGAIN = f"""
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


CLASSIFY_ONE = (
    f"WITH {_CLASSIFY.format(where='l.id = %(loan)s', pauses='p.loan_id = %(loan)s')} "  # noqa: S608
    "SELECT days, paused, target, noticed FROM classified"
)


STAGE_HISTORY_INSERT = f"""
INSERT INTO {LoanStageChange._meta.db_table}
    (lender_id, loan_id, from_stage, to_stage, cause, days_overdue, business_date,
     policy_version_id, device_version, created_at, updated_at)
SELECT %(lender)s, h.loan, h.f, h.t, %(cause)s, h.d, %(bd)s, h.pv, h.v, %(now)s, %(now)s
FROM unnest(%(loans)s::bigint[], %(froms)s::text[], %(tos)s::text[], %(ds)s::integer[],
            %(pvs)s::bigint[], %(vs)s::integer[]) AS h(loan, f, t, d, pv, v)
"""  # noqa: S608


# the audit event of each change, built in SQL from the same arrays as the history
STAGE_AUDIT_ROWS = """
SELECT n, loan::text AS target_id, jsonb_build_object(
    'stage', jsonb_build_object('old', f, 'new', t), 'cause', %(cause)s::text,
    'days_overdue', d, 'business_date', %(bd)s::text, 'policy_version_id', pv,
    'paused', p, 'device_id', device, 'device_version', v) AS data
FROM unnest(%(loans)s::bigint[], %(froms)s::text[], %(tos)s::text[], %(ds)s::integer[],
            %(pvs)s::bigint[], %(paused)s::boolean[], %(devices)s::bigint[], %(vs)s::integer[])
    WITH ORDINALITY AS c(loan, f, t, d, pv, p, device, v, n)
"""


PAUSES_CLOSE = f"""
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
RELEASED_STAGED = f"""
SELECT id, stage, policy_version_id, customer_id FROM {Loan._meta.db_table}
WHERE lender_id = %(lender)s AND id >= %(lo)s AND id < %(hi)s
  AND status = 'active' AND collateral_released_at IS NOT NULL AND stage <> 'none'
ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608  (table names from model metadata; values are parameters)


RAISED = f"""
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


RANGE_STARTS = f"""
SELECT id FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS n
    FROM {Loan._meta.db_table} WHERE lender_id = %s AND status = 'active'
) AS numbered
WHERE (n - 1) %% %s = 0 ORDER BY id
"""  # noqa: S608
