"""The notifications app's hand-written statements, composed from the models' tables.

Each is composed once with ``psycopg.sql`` (identifiers quoted from the models'
``_meta``; every value a parameter) and rendered to the text the cursor runs.
``tests/notifications/test_sql.py`` checks each against a Python oracle and checks with
EXPLAIN that it uses the index it was written for.
"""

from __future__ import annotations

from psycopg import sql

from apps.notifications.models import Notification

_NOTIFICATIONS = sql.Identifier(Notification._meta.db_table)

QUEUE = (
    sql.SQL("""
INSERT INTO {notifications}
    (lender_id, customer_id, loan_id, kind, status, locale, body, dedupe_key, scheduled_for,
     channel, fell_back_from, first_channel, provider, provider_ref, delivery, error,
     announces_stage, announces_on, created_at, updated_at)
SELECT %(lender)s, q.customer, q.loan, q.kind, q.status, q.locale, q.body, q.dedupe, q.at,
       '', '', q.first, '', '', '', '', q.announces, q.announces_on, %(now)s, %(now)s
FROM unnest(%(customers)s::bigint[], %(loans)s::bigint[], %(kinds)s::text[], %(statuses)s::text[],
            %(locales)s::text[], %(bodies)s::text[], %(dedupes)s::text[], %(ats)s::timestamptz[],
            %(announces)s::text[], %(announces_on)s::date[], %(firsts)s::text[])
    AS q(customer, loan, kind, status, locale, body, dedupe, at, announces, announces_on, first)
ON CONFLICT (lender_id, dedupe_key) DO NOTHING
RETURNING id
""")
    .format(notifications=_NOTIFICATIONS)
    .as_string()
)
"""Queue a lender's messages given as one array per column (``notifications_queue``), in
one statement: a dedupe key the lender already has (``notification_once``), or one repeated
in the arrays, is skipped. Returns the id of each message queued; takes no lock beyond the
unique index's."""

PENDING = (
    sql.SQL(
        "SELECT id, kind, body FROM {notifications} "
        "WHERE loan_id = %s AND status = 'pushed' ORDER BY pushed_at, id"
    )
    .format(notifications=_NOTIFICATIONS)
    .as_string()
)
"""The notices pushed to a loan's phone and not yet acknowledged, oldest first
(``notices_pending``, on every agent check-in); one parameter, the loan. Found by
``notification_loan_status``."""

SENT = (
    sql.SQL("""
UPDATE {notifications} AS x
SET status = s.status, channel = s.channel, fell_back_from = s.fell_back_from,
    pushed_at = s.pushed_at, sent_at = s.sent_at, provider = s.provider,
    provider_ref = s.provider_ref, delivery = s.delivery, delivered_at = s.delivered_at,
    error = s.error, updated_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(channels)s::text[],
            %(fell_back_from)s::text[], %(pushed_at)s::timestamptz[], %(sent_at)s::timestamptz[],
            %(providers)s::text[], %(provider_refs)s::text[], %(deliveries)s::text[],
            %(delivered_at)s::timestamptz[], %(errors)s::text[])
    AS s(id, status, channel, fell_back_from, pushed_at, sent_at, provider, provider_ref,
         delivery, delivered_at, error)
WHERE x.id = s.id
""")
    .format(notifications=_NOTIFICATIONS)
    .as_string()
)
"""Write what a dispatch made of its messages (``_save_sent``): each row's delivery columns
set to the arrays' values at its position, in one statement; rows found by the primary key
(the caller holds their locks). An id given twice is an error in the caller."""

SENT_COLUMNS = (
    "status",
    "channel",
    "fell_back_from",
    "pushed_at",
    "sent_at",
    "provider",
    "provider_ref",
    "delivery",
    "delivered_at",
    "error",
)
"""The Notification fields ``SENT`` writes, in the order of its arrays after the ids."""

_RANK = "CASE {d} WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN '' THEN -1 ELSE 2 END"

DELIVERY_FORWARD = (
    sql.SQL(
        """
UPDATE {notifications} AS x
SET delivery = u.delivery,
    delivered_at = CASE WHEN u.delivery = 'delivered' THEN coalesce(u.at, %(now)s)
                        ELSE x.delivered_at END,
    updated_at = %(now)s
FROM unnest(%(refs)s::text[], %(deliveries)s::text[], %(ats)s::timestamptz[])
    AS u(ref, delivery, at)
WHERE x.lender_id = %(lender)s AND x.provider = %(provider)s AND x.provider_ref = u.ref
  AND x.provider_ref <> '' AND x.delivery <> ''
  AND """
        + _RANK.format(d="u.delivery")
        + " > "
        + _RANK.format(d="x.delivery")
        + """
RETURNING x.id
"""
    )
    .format(notifications=_NOTIFICATIONS)
    .as_string()
)
"""Move the lender's texts its provider reported queued, sent or delivered forward, in one
statement: a report behind what is recorded (late, repeated, after the end) changes
nothing, nor does one naming a message the lender never sent (a failure is applied in
Python: it may fall back). One report per reference (the caller keeps the furthest).
Found by ``notification_provider_ref``; returns the ids moved."""
