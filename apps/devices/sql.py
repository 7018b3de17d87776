"""The hand-written SQL of devices: each statement written once, composed from the models.

Where set-based SQL beats the ORM (the states a sweep writes for thousands of
phones, the push outbox's relay, the agent's heartbeat), the statement lives
here as a named constant, composed with ``psycopg.sql`` from the models'
``_meta.db_table``; every value is a parameter. Each docstring says what the
statement does and which locks it takes; tests/devices/test_sql.py checks each
against a Python oracle of its rule and, with EXPLAIN, that it uses the index it
is written for.
"""

from __future__ import annotations

from psycopg import sql

from apps.core.sql import select_columns
from apps.devices.models import Device, DeviceEvent, DeviceState, OfflineToken, PushNudge

_devices = sql.Identifier(Device._meta.db_table)
_states = sql.Identifier(DeviceState._meta.db_table)
_codes = sql.Identifier(OfflineToken._meta.db_table)
_nudges = sql.Identifier(PushNudge._meta.db_table)
_events = sql.Identifier(DeviceEvent._meta.db_table)

# --- locks -------------------------------------------------------------------------------

DEVICES_LOCK = sql.SQL(
    "SELECT id FROM {devices} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE"
).format(devices=_devices)
"""Lock the device rows of the ids in one array parameter, in id order (the global order:
after the loans, before the audit chain); returns the ids found. Index: the primary key."""

DEVICES_LOCK_FOR_LOANS = sql.SQL(
    "SELECT id FROM {devices} WHERE loan_id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE"
).format(devices=_devices)
"""Lock every phone row of the loans in one array parameter, in id order; returns their
ids. Index: the one on ``loan_id`` (the foreign key's)."""

# --- reads -------------------------------------------------------------------------------

DEVICE_IDS_ENROLLED_FOR_LOANS = sql.SQL(
    "SELECT loan_id, id FROM {devices} WHERE loan_id = ANY(%s) AND status = %s"
).format(devices=_devices)
"""(loan id, device id) of each enrolled phone of the loans in one array parameter (the
second parameter is the enrolled status). Takes no lock. Index: ``device_one_live_per_loan``
(at most one bound phone per loan)."""

OFFLINE_CODE_WAITING = sql.SQL(
    """
SELECT {columns} FROM {codes} AS t JOIN {devices} AS d ON d.id = t.device_id
WHERE d.loan_id = %(loan)s AND d.status = {enrolled} AND t.lender_id = %(lender)s
  AND d.acked_version < t.state_version
  AND NOT EXISTS (SELECT 1 FROM {codes} AS n WHERE n.device_id = t.device_id AND n.count > t.count)
  AND NOT EXISTS (
    SELECT 1 FROM {states} AS s
    WHERE s.device_id = t.device_id AND s.version > t.state_version
      AND NOT s.level = (SELECT th.level FROM {states} AS th
                         WHERE th.device_id = t.device_id AND th.version = t.state_version))
ORDER BY t.count DESC
LIMIT 1
"""
).format(
    columns=select_columns(OfflineToken, table="t"),
    codes=_codes,
    devices=_devices,
    states=_states,
    enrolled=sql.Literal(Device.Status.ENROLLED.value),
)
"""The unlock code loan ``%(loan)s`` (of lender ``%(lender)s``) still waits to be typed: the
newest code of its enrolled phone while the phone has not acked the state the code stands
for, and no state of another level was written since (``offline_codes_current``, the rule;
a state whose level cannot be read leaves the code current, as there). Asked after every
payment (the receipt points to the code): one statement written once, where the queryset
with its nested subqueries cost more to compile than to run. Takes no lock. Index:
``device_one_live_per_loan`` (the loan's bound phone), ``offline_token_count_once`` (the
phone's codes by count) and ``device_state_version_unique`` (its states by version)."""

DEVICE_STATE_FOR_LENDER = sql.SQL(
    sql.SQL(
        """
SELECT d.id, d.loan_id, d.imei, d.status, s.level, d.desired_version, d.acked_version,
    d.acked_at,
    CASE WHEN d.acked_version < d.desired_version THEN %(now)s - s.created_at END,
    d.last_seen_at, d.lease_until, e.kinds, e.times
FROM {devices} AS d
LEFT JOIN {states} AS s ON s.device_id = d.id AND s.version = d.desired_version
LEFT JOIN LATERAL (
    SELECT array_agg(r.kind ORDER BY r.occurred_at DESC) AS kinds,
           array_agg(r.occurred_at ORDER BY r.occurred_at DESC) AS times
    FROM (SELECT kind, occurred_at FROM {events}
          WHERE device_id = d.id AND kind = ANY(%(kinds)s)
          ORDER BY occurred_at DESC LIMIT %(limit)s) AS r
) AS e ON true
WHERE d.id = %(device)s AND d.lender_id = %(lender)s
"""
    )
    .format(devices=_devices, states=_states, events=_events)
    .as_string()
)
"""Phone ``%(device)s`` of lender ``%(lender)s`` (no row for another lender's: the tenancy
rule ``scope_to_lender`` applies, the phone's own ``lender_id``), as a lender's system reads
it: id, loan, IMEI, status, the level of its desired state, desired and acknowledged
versions, acknowledged at, the sync lag as of ``%(now)s`` (while behind: since its desired
state was written, as ``device_list_with_sync_lag``), last check-in, offline lease, and its
newest ``%(limit)s`` events of the kinds ``%(kinds)s`` (kinds and times, newest first). Read
on every call of the lender API's phone state: one statement written once, where the
queryset with its subqueries cost more to compile than to run, and a second query read
the events. Rendered once to its text. Takes no lock. Index: the primary key, then
``device_state_version_unique`` and the events' device index."""

# --- the agent's calls -------------------------------------------------------------------

DEVICE_HEARTBEAT = sql.SQL(
    """
UPDATE {devices}
SET last_seen_at = %(now)s, updated_at = %(now)s, battery_percent = %(battery)s,
    agent_version = COALESCE(NULLIF(%(agent)s, ''), agent_version), last_ip = %(ip)s
WHERE id = %(id)s AND status = 'enrolled'
  AND desired_version = %(applied)s AND acked_version = %(applied)s
  AND (%(iccid)s = '' OR iccid_sha256 = %(iccid)s) AND lease_until > %(renew_by)s
RETURNING id
"""
).format(devices=_devices)
"""A current phone's heartbeat in one statement: when the phone is enrolled, has applied and
acked its newest state (``applied``), its SIM is the one on record (or it reports none) and
its state's offline lease runs past ``renew_by``, record that it was seen and return its id; otherwise change nothing and return no row (the
caller takes the locked path). Locks the device row it updates. Index: the primary key."""

DEVICE_AUTHENTICATE_FIELDS = ["id", "lender_id", "loan_id", "status", "credential_hash"]

# the column list as one fragment, not an identifier each: the statement is composed again
# at every agent call, and quoting five identifiers each time cost five times as much
DEVICE_AUTHENTICATE = sql.SQL("SELECT {fields} FROM {devices} WHERE id = %s").format(
    fields=sql.SQL(", ".join(DEVICE_AUTHENTICATE_FIELDS)), devices=_devices
)
"""The fields ``DEVICE_AUTHENTICATE_FIELDS`` of one device, for checking its credential on
every agent call (one narrow statement, no ORM compilation). Takes no lock. Index: the
primary key."""

# --- the push outbox ---------------------------------------------------------------------

# A new nudge: ``_NUDGE_INSERT`` then ``SELECT lender, device, version, {_NUDGE_NEW} FROM ...``
# (in the enqueue, and in the statement that writes the phones' states).
_NUDGE_INSERT = sql.SQL(
    """INSERT INTO {nudges}
    (lender_id, device_id, version, status, attempts, next_attempt_at, message_id, error_code,
     created_at, updated_at)"""
).format(nudges=_nudges)
_NUDGE_NEW = sql.SQL(
    "'pending', 0, statement_timestamp(), '', '', statement_timestamp(), statement_timestamp()"
)

PUSH_NUDGES_ENQUEUE = sql.SQL(
    """
{insert}
SELECT l, d, v, {new} FROM unnest(%s::bigint[], %s::bigint[], %s::integer[]) AS n(l, d, v)
"""
).format(insert=_NUDGE_INSERT, new=_NUDGE_NEW)
"""Queue one pending push, due now, per (lender id, device id, state version) of three
parallel array parameters. Takes no lock but the new rows'. Uses no index (an insert)."""

PUSH_NUDGES_CLAIM = sql.SQL(
    """
WITH due AS (
    SELECT id FROM {nudges}
    WHERE (status = 'pending' AND next_attempt_at <= statement_timestamp())
       OR (status = 'sending' AND claimed_at < statement_timestamp() - make_interval(secs => %s))
    ORDER BY next_attempt_at, id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE {nudges} AS n
SET status = 'sending', attempts = n.attempts + 1, claimed_at = statement_timestamp(),
    updated_at = statement_timestamp()
FROM due WHERE n.id = due.id
RETURNING n.id, n.device_id, n.version, n.attempts
"""
).format(nudges=_nudges)
"""Claim at most the second parameter's count of due pushes, oldest due first: pending ones
whose time has come, and ones left "sending" longer than the first parameter's seconds (a
relay died). Marks them sending and counts the attempt; returns (id, device id, version,
attempts). Locks the claimed rows, skipping rows another relay holds (``SKIP LOCKED``), so
relays on several workers share the work. Index: ``push_nudge_due``."""

PUSH_OUTCOMES_RECORD = sql.SQL(
    """
UPDATE {nudges} AS n
SET status = r.status, message_id = r.message_id, error_code = r.error_code,
    sent_at = CASE WHEN r.status = 'sent' THEN statement_timestamp() ELSE n.sent_at END,
    next_attempt_at = statement_timestamp() + make_interval(secs => r.delay),
    updated_at = statement_timestamp()
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::double precision[],
            %s::integer[]) AS r(id, status, message_id, error_code, delay, attempts)
WHERE n.id = r.id AND n.status = 'sending' AND n.attempts = r.attempts
RETURNING n.id
"""
).format(nudges=_nudges)
"""Record the outcome of each claimed push (parallel arrays: id, status, message id, error
code, delay in seconds before the next attempt, and the attempts the claim counted); a row
reclaimed meanwhile (still sending, but its attempts moved on) keeps the other relay's
record. Returns the ids recorded. Locks the rows it updates. Index: the primary key."""

PUSH_TOKENS_DEAD = sql.SQL(
    """
UPDATE {devices} AS d
SET fcm_token_dead_at = statement_timestamp(), updated_at = statement_timestamp()
FROM unnest(%s::bigint[], %s::text[]) AS t(id, token)
WHERE d.id = t.id AND d.fcm_token = t.token AND d.fcm_token_dead_at IS NULL
RETURNING d.id, d.lender_id
"""
).format(devices=_devices)
"""Mark dead the push address of each (device id, token) of two parallel arrays, unless the
phone reported another address meanwhile or it is dead already; returns (device id, lender
id) of those marked. Locks the device rows it updates (take ``DEVICES_LOCK`` first, in id
order). Index: the primary key."""

PUSH_NEXT_DUE_IN = sql.SQL(
    "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - statement_timestamp()) FROM {nudges} "
    "WHERE status = 'pending'"
).format(nudges=_nudges)
"""Seconds until the next pending push falls due (negative when one is overdue, NULL when
none waits). Takes no lock. Index: ``push_nudge_due``."""

PUSH_RENUDGE_ADVISORY_LOCK = sql.SQL("SELECT pg_advisory_xact_lock(%s)")
"""Take the transaction-scoped advisory lock of the parameter's key (one re-nudge run at a
time). Uses no index."""

PUSH_RELEASE_UNACKED = sql.SQL(
    """
SELECT d.lender_id, d.id, d.desired_version
FROM {devices} AS d
JOIN {states} AS s
  ON s.device_id = d.id AND s.version = d.desired_version AND s.level = 'released'
CROSS JOIN LATERAL (
    SELECT count(*) AS sent, max(n.created_at) AS last,
           count(*) FILTER (WHERE n.status IN ('pending', 'sending')) AS waiting
    FROM {nudges} AS n
    WHERE n.device_id = d.id AND n.version = d.desired_version
) AS past
WHERE d.status = 'enrolled' AND d.acked_version < d.desired_version AND past.waiting = 0
  AND d.fcm_token <> '' AND d.fcm_token_dead_at IS NULL
  AND s.created_at > statement_timestamp() - make_interval(days => %(give_up_days)s)
  AND (past.last IS NULL OR past.last < statement_timestamp() - make_interval(
        secs => LEAST(%(cap)s, %(base)s * power(2, GREATEST(past.sent - 1, 0)))))
"""
).format(devices=_devices, states=_states, nudges=_nudges)
"""(lender id, device id, version) of each enrolled phone told it is released (its newest
state, written less than ``give_up_days`` ago) that has not acked it, has a live push
address and no push of it waiting, and whose last push of it is older than ``base``
seconds doubled per push sent, at most ``cap``. Takes no lock. Indexes:
``device_state_released`` and ``push_nudge_device``."""

# --- the desired states ------------------------------------------------------------------

_ISO = sql.Literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')

DEVICE_STATES_WRITE = sql.SQL(
    """
WITH shown AS MATERIALIZED (
    SELECT c.n, c.level, jsonb_build_object(
            'level', c.level,
            'issued_at', to_char(%(now)s AT TIME ZONE 'UTC', {iso}),
            'valid_until', to_char((%(now)s + %(lease)s) AT TIME ZONE 'UTC', {iso}),
            'fallback_level', c.fallback_level, 'locale', c.locale,
            'wallpaper_text', c.wallpaper_text, 'lock_screen_text', c.lock_screen_text,
            'blocked_packages', c.blocked_packages, 'blocked_categories', c.blocked_categories,
            'alarm_times', c.alarm_times, 'always_allowed_packages', %(allowed)s::jsonb,
            'always_allowed_numbers', c.always_allowed_numbers,
            'alarm_days', c.alarm_days, 'timezone', %(timezone)s::text,
            'emergency_grace_hours', %(grace_hours)s::int,
            'support_pin_hours', %(pin_hours)s::int
        ) AS document
    FROM unnest(%(levels)s::text[], %(locales)s::text[],
                %(wallpapers)s::text[], %(lock_texts)s::text[], %(packages)s::jsonb[],
                %(categories)s::jsonb[], %(alarms)s::jsonb[], %(numbers)s::jsonb[],
                %(fallbacks)s::text[], %(alarm_days)s::jsonb[]) WITH ORDINALITY
        AS c(level, locale, wallpaper_text, lock_screen_text, blocked_packages,
             blocked_categories, alarm_times, always_allowed_numbers, fallback_level,
             alarm_days, n)
),
input AS (
    SELECT p.device_id, c.level, c.document
    FROM unnest(%(devices)s::bigint[], %(shown_as)s::bigint[]) AS p(device_id, i)
    JOIN shown AS c ON c.n = p.i + 1
),
bumped AS (
    UPDATE {devices} AS d
    SET desired_version = d.desired_version + 1, lease_until = %(now)s + %(lease)s,
        updated_at = %(now)s
    FROM input AS c
    WHERE d.id = c.device_id AND d.lender_id = %(lender)s AND d.status = 'enrolled'
      AND (c.level = 'released' OR NOT EXISTS (
            SELECT 1 FROM {states} AS s
            WHERE s.device_id = d.id AND s.version = d.desired_version AND s.level = 'released'))
    RETURNING d.id, d.desired_version, d.key_version, d.token_count
),
states AS (
    INSERT INTO {states}
        (lender_id, device_id, version, level, document, key_version, created_at, updated_at)
    SELECT %(lender)s, b.id, b.desired_version, c.level,
        c.document || jsonb_build_object(
            'device', b.id, 'version', b.desired_version, 'key_version', b.key_version,
            'token_count', b.token_count
        ) || CASE WHEN b.key_version < %(key_version)s
                  THEN jsonb_build_object('next_key', %(next_key)s::jsonb)
                  ELSE '{{}}'::jsonb END,
        b.key_version, %(now)s, %(now)s
    FROM bumped AS b JOIN input AS c ON c.device_id = b.id
    RETURNING device_id, version, level
),
nudged AS (
    {nudge_insert}
    SELECT %(lender)s, device_id, version, {nudge_new} FROM states
)
SELECT device_id, version, level FROM states
"""
).format(
    iso=_ISO,
    devices=_devices,
    states=_states,
    nudge_insert=_NUDGE_INSERT,
    nudge_new=_NUDGE_NEW,
)
"""Give each phone of ``devices`` its next desired state, showing content ``shown_as[i]``
of the parallel content arrays (levels, locales, texts, lists as JSON): for the phones of
``lender`` that are enrolled and whose newest state is not ``released`` (unless the new one
is), move ``desired_version`` on, append the state with its document built by
``jsonb_build_object``, and queue its push (the outbox) in the same statement.

The input is two sets of arrays: one entry per phone (device id, index of what it shows),
and one per distinct content (a sweep gives thousands of phones a handful). Each content's
document is built once (materialized: inlined, the documents would be built once per
phone); a phone's adds its device, version and key, the count of its newest offline unlock
code (older codes are void once the phone applies the state), and ``next_key`` when the phone
is on an older key than ``key_version``. Returns (device id, version,
level) of the states written. Locks the device rows it updates (take ``DEVICES_LOCK``
first). Indexes: the devices' primary key, and ``device_state_released`` for the test of a
release."""

DEVICE_STATE_AUDIT_ROWS = sql.SQL(
    """
SELECT n, id::text AS target_id, jsonb_build_object('version', version, 'level', level) AS data
FROM unnest(%(ids)s::bigint[], %(versions)s::integer[], %(levels)s::text[]) WITH ORDINALITY
    AS w(id, version, level, n)
"""
)
"""The rows of one ``devices.state.changed`` event per state written (parallel arrays of
device ids, versions and levels), in their order, for ``audit_events_record_select``. Reads
no table; takes no lock."""

DEVICE_TOKEN_COUNTS_SET = sql.SQL(
    """
UPDATE {devices} AS d SET token_count = v.token_count, updated_at = %s
FROM unnest(%s::bigint[], %s::int[]) AS v(id, token_count)
WHERE d.id = v.id
"""
).format(devices=_devices)
"""Set each device's ``token_count`` (the count of its newest offline unlock code) from two
parallel arrays (ids, counts), at the time given: one statement for a batch of codes. The
caller holds the devices' locks. Index: the primary key."""

OFFLINE_CODES_INSERT = sql.SQL(
    """
INSERT INTO {codes} (lender_id, device_id, count, kind, value, paid_until, state_version, cause,
    delivery, sms_due_at, sms_sent_at, sms_ref, sms_attempts, sending_until, resent_at,
    applied_at, created_at, updated_at)
SELECT c.lender_id, c.device_id, c.count, c.kind, c.value, c.paid_until, c.state_version,
    %(cause)s, 'waiting', c.sms_due_at, NULL, '', 0, NULL, NULL, NULL, %(now)s, %(now)s
FROM unnest(%(lenders)s::bigint[], %(devices)s::bigint[], %(counts)s::int[], %(kinds)s::text[],
            %(values)s::int[], %(paid_until)s::date[], %(versions)s::int[],
            %(due)s::timestamptz[]) WITH ORDINALITY
    AS c(lender_id, device_id, count, kind, value, paid_until, state_version, sms_due_at, n)
ORDER BY c.n
RETURNING id
"""
).format(codes=_codes)
"""Append one offline unlock code per entry of the parallel arrays (lender, device, count,
kind, value, paid-until date, state version, SMS due time), waiting for delivery, with the
cause and time given; returns their ids. The devices' rows are locked by the caller (their
counts move in the same transaction). Inserts only: the unique (device, count) index checks
each row."""

OFFLINE_CODE_AUDIT_ROWS = sql.SQL(
    """
SELECT w.n, c.device_id::text AS target_id,
    jsonb_build_object('code_id', c.id, 'count', c.count, 'kind', c.kind,
                       'paid_until', c.paid_until, 'state_version', c.state_version,
                       'sms_due_at', c.sms_due_at) AS data
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS w(id, n)
JOIN {codes} AS c ON c.id = w.id
"""
).format(codes=_codes)
"""The rows of one ``devices.offline_code.issued`` event per code of the array (its device
the target; count, kind, paid-until date, state version and SMS due time, never the digits),
numbered in the array's order, for ``audit_events_record_select`` (which appends by ``n``). Index: the codes' primary key."""
