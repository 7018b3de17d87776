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
     channel, fell_back_from, provider, provider_ref, delivery, error, announces_stage,
     announces_on, created_at, updated_at)
SELECT %(lender)s, q.customer, q.loan, q.kind, q.status, q.locale, q.body, q.dedupe, q.at,
       '', '', '', '', '', '', q.announces, q.announces_on, %(now)s, %(now)s
FROM unnest(%(customers)s::bigint[], %(loans)s::bigint[], %(kinds)s::text[], %(statuses)s::text[],
            %(locales)s::text[], %(bodies)s::text[], %(dedupes)s::text[], %(ats)s::timestamptz[],
            %(announces)s::text[], %(announces_on)s::date[])
    AS q(customer, loan, kind, status, locale, body, dedupe, at, announces, announces_on)
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
