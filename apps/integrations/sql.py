"""Hand-written SQL of the integrations: the reads on every provider callback's path, and
the webhooks' projection, claim and outcomes.

Each statement is a module-level constant composed with ``psycopg.sql`` (the table from the
model's ``_meta.db_table``; every value a parameter), followed by its docstring: what it
does, the locks it takes and the index it is written for; the rows are loaded with
``apps.core.sql.select_rows``. tests/integrations/test_sql.py
holds each to the queryset it replaces and to its plan; tests/integrations/test_webhooks_sql.py
checks the webhooks' claim, its plan and its race.
"""

from __future__ import annotations

from psycopg import sql

from apps.audit.models import AuditChain
from apps.audit.sql import PUBLIC_EVENTS_SOURCE
from apps.core.sql import select_columns
from apps.integrations.models import (
    ProviderAccount,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.lenders.models import Lender

_accounts = sql.Identifier(ProviderAccount._meta.db_table)
_lenders = sql.Identifier(Lender._meta.db_table)

PROVIDER_ACCOUNT_GET = sql.SQL(
    "SELECT {columns} FROM {accounts} WHERE lender_id = %s AND provider = %s"
).format(columns=select_columns(ProviderAccount), accounts=_accounts)
"""The lender's account with the provider, if any (one at most:
``provider_account_one_per_lender``). Read on every provider callback, for its adapter: the
queryset, which joins the lender for the model's ordering, cost ten times the CPU of this
statement. Takes no lock. Index: ``provider_account_one_per_lender``."""

PROVIDER_ACCOUNT_IN_USE = sql.SQL(
    "SELECT {columns} FROM {accounts} WHERE lender_id = %s AND provider = %s AND enabled"
).format(columns=select_columns(ProviderAccount), accounts=_accounts)
"""``PROVIDER_ACCOUNT_GET`` if the account is in use (for a payment started now). Takes no
lock. Index: ``provider_account_one_per_lender``."""

PROVIDER_ACCOUNT_BY_LENDER_SLUG = sql.SQL(
    "SELECT {columns} FROM {accounts} AS a JOIN {lenders} AS l ON l.id = a.lender_id"
    " WHERE l.slug = %s AND a.provider = %s"
).format(columns=select_columns(ProviderAccount, table="a"), accounts=_accounts, lenders=_lenders)
"""The account with the provider of the lender whose slug a callback's path names, if any,
in one round trip (a provider callback's first read: the lender's id and its adapter).
Takes no lock. Index: the lenders' slug, ``provider_account_one_per_lender``."""

_CURSORS = sql.Identifier(WebhookCursor._meta.db_table)
_CHAINS = sql.Identifier(AuditChain._meta.db_table)
_DELIVERIES = sql.Identifier(WebhookDelivery._meta.db_table)
_ENDPOINTS = sql.Identifier(WebhookEndpoint._meta.db_table)

CURSOR_START = (
    sql.SQL("""
INSERT INTO {cursors} (created_at, updated_at, lender_id, last_seq)
SELECT now(), now(), %(lender)s,
    coalesce((SELECT last_seq FROM {chains} WHERE lender_id = %(lender)s), 0)
ON CONFLICT (lender_id) DO NOTHING
""")
    .format(cursors=_CURSORS, chains=_CHAINS)
    .as_string()
)
"""The lender's webhooks cursor at its chain's head, if it has none yet: a lender's first
endpoint starts from now, no history is replayed."""

CURSORS_BEHIND = (
    sql.SQL("""
SELECT c.lender_id, c.last_seq, h.id, h.last_seq
FROM {cursors} AS c JOIN {chains} AS h ON h.lender_id = c.lender_id
WHERE h.last_seq > c.last_seq AND (%(lender)s::bigint IS NULL OR c.lender_id = %(lender)s)
ORDER BY c.lender_id
FOR UPDATE OF c SKIP LOCKED
""")
    .format(cursors=_CURSORS, chains=_CHAINS)
    .as_string()
)
"""(lender, cursor, chain id, chain head) of each lender whose chain went past its webhooks'
cursor (only ``%(lender)s`` if not NULL). Locks those cursors, skipping any another
dispatcher holds: one projects a lender's stretch of chain at a time."""

PROJECT = (
    sql.SQL("""
WITH ev AS ({source}),
inserted AS (
    INSERT INTO {deliveries} (created_at, updated_at, lender_id, endpoint_id, event_id, seq,
        event_type, loan_key, payload, status, attempts, next_attempt_at, retry_from,
        last_error)
    SELECT %(now)s, %(now)s, ep.lender_id, ep.id, ev.id, ev.seq, ev.type,
        coalesce(ev.loan_id, 0), ev.payload, 'pending', 0, %(now)s, %(now)s, ''
    FROM ev JOIN {endpoints} AS ep
        ON ep.lender_id = %(lender)s AND ep.enabled AND ep.created_at <= ev.occurred_at
        AND (ep.event_types = '[]'::jsonb OR ep.event_types ? ev.type)
    -- ids in chain order: the sender's "nothing earlier pending" is by id
    ORDER BY ev.seq, ep.id
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING 1
)
UPDATE {cursors} SET last_seq = %(upto)s, updated_at = %(now)s
WHERE lender_id = %(lender)s
RETURNING (SELECT count(*) FROM inserted)
""")
    .format(
        source=PUBLIC_EVENTS_SOURCE,
        deliveries=_DELIVERIES,
        endpoints=_ENDPOINTS,
        cursors=_CURSORS,
    )
    .as_string()
)
"""One delivery per public event of the lender's chain in ``(%(pub_after)s, %(upto)s]``
(``apps.audit.public``) and per endpoint of the lender in use that takes its type and
existed when it happened, once (``webhook_delivery_once``); then the cursor moves to
``%(upto)s``. The caller holds the cursor's lock (``CURSORS_BEHIND``). Returns the count
of deliveries written."""

CLAIM = (
    sql.SQL("""
WITH due AS (
    SELECT d.id FROM {deliveries} AS d
    WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s
      AND d.endpoint_id IN (SELECT id FROM {endpoints} WHERE enabled)
      AND NOT EXISTS (
          SELECT 1 FROM {deliveries} AS p
          WHERE p.status = 'pending' AND p.endpoint_id = d.endpoint_id
            AND p.loan_key = d.loan_key AND p.id < d.id AND p.next_attempt_at > %(now)s)
    ORDER BY d.id
    LIMIT %(batch)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE {deliveries} AS d SET next_attempt_at = %(lease)s, updated_at = %(now)s
-- by primary key, whatever the statistics say of a table that just grew a backlog
WHERE d.id = ANY(ARRAY(SELECT id FROM due))
RETURNING d.id, d.endpoint_id, d.loan_key, d.payload, d.retry_from, d.attempts
""")
    .format(deliveries=_DELIVERIES, endpoints=_ENDPOINTS)
    .as_string()
)
"""Claim up to ``%(batch)s`` deliveries due at ``%(now)s`` to endpoints in use, oldest first,
leaving out any with an earlier delivery of the same endpoint and loan still waiting (its
retry later, or claimed by another sender): one loan's events reach an endpoint in order.
Claimed rows are leased until ``%(lease)s`` (a sender that dies leaves them due again then).
The caller holds ``pg_advisory_xact_lock`` on ``CLAIM_LOCK``, so two senders never judge
"earlier waiting" from snapshots that miss each other's claim. Indexes:
``webhook_delivery_due`` (the backlog in order), ``webhook_delivery_waiting`` (the few not
due: ``tests/integrations/test_webhooks_sql.py``)."""

CLAIM_LOCK = 0x5745_4248  # "WEBH": the advisory lock that serialises claims

OUTCOMES = (
    sql.SQL("""
UPDATE {deliveries} AS d SET
    status = o.status,
    attempts = d.attempts + o.tried,
    next_attempt_at = o.next_at,
    last_attempt_at = CASE WHEN o.tried = 1 THEN %(now)s ELSE d.last_attempt_at END,
    last_status = CASE WHEN o.tried = 1 THEN o.code ELSE d.last_status END,
    last_error = CASE WHEN o.tried = 1 THEN o.error ELSE d.last_error END,
    delivered_at = CASE WHEN o.status = 'delivered' THEN %(now)s ELSE d.delivered_at END,
    updated_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(tried)s::integer[],
            %(next)s::timestamptz[], %(codes)s::integer[], %(errors)s::text[])
    AS o(id, status, tried, next_at, code, error)
WHERE d.id = o.id AND d.id = ANY(%(ids)s::bigint[])
""")
    .format(deliveries=_DELIVERIES)
    .as_string()
)
"""Record what came of each claimed delivery (one array per column): its status, whether it
was tried (0: it waited behind one of its loan's that failed), when to try next, the
receiver's answer and error. Updates by primary key (``= ANY``: never a scan of the table,
whatever its statistics say)."""

NEXT_RETRY = (
    sql.SQL("""
SELECT min(d.next_attempt_at) FROM {deliveries} AS d
WHERE d.status = 'pending' AND d.next_attempt_at > %s
  AND d.endpoint_id IN (SELECT id FROM {endpoints} WHERE enabled)
""")
    .format(deliveries=_DELIVERIES, endpoints=_ENDPOINTS)
    .as_string()
)
"""When the next delivery to an endpoint in use falls due after the given time (a retry, or
a lease that ends), or NULL. Takes no lock. Index: ``webhook_delivery_waiting``."""
