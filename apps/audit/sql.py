"""The audit app's hand-written statements, composed from the models' tables.

Each is composed once with ``psycopg.sql`` (identifiers quoted from the models'
``_meta``; every value a named or positional parameter) and rendered to the text the
cursor runs. ``tests/audit/test_sql.py`` checks each against a Python oracle and checks
with EXPLAIN that it uses the index it was written for.
"""

from __future__ import annotations

from functools import cache

from psycopg import sql

from apps.audit.hashing import FORMAT_VERSION
from apps.audit.models import AuditChain, AuditEvent
from apps.core.sql import select_columns

_CHAINS = sql.Identifier(AuditChain._meta.db_table)
_EVENTS = sql.Identifier(AuditEvent._meta.db_table)

# the chain head's columns in field order, for apps.core.sql.select_rows
_HEAD = select_columns(AuditChain)

CHAIN_LOCK = (
    sql.SQL("SELECT {head} FROM {chains} WHERE lender_id = %s FOR UPDATE")
    .format(head=_HEAD, chains=_CHAINS)
    .as_string()
)
"""The head of a lender's chain, locked (``audit_chain_lock``); one parameter, the lender.
Finds it by ``audit_one_chain_per_lender``; takes the row lock every append of that lender
queues on."""

PLATFORM_CHAIN_LOCK = (
    sql.SQL("SELECT {head} FROM {chains} WHERE lender_id IS NULL FOR UPDATE")
    .format(head=_HEAD, chains=_CHAINS)
    .as_string()
)
"""The head of the platform chain (no lender), locked, as ``CHAIN_LOCK``."""

# The columns of an event that ``hashing.event_line`` covers (format 2), in its order.
_HASHED = [
    sql.SQL("%(audit_lender)s"),
    sql.SQL("seq::text"),
    sql.SQL("%(audit_occurred)s"),
    *(
        sql.Identifier(name)
        for name in ("actor_type", "actor_id", "action", "target_type", "target_id")
    ),
    sql.SQL("data::text"),
    *(sql.Identifier(name) for name in ("reason", "ip", "user_agent")),
]
_LINE = sql.SQL(" || '|' || ").join(
    [
        sql.Literal(str(FORMAT_VERSION)),
        *(sql.SQL("length({f}) || ':' || {f}").format(f=field) for field in _HASHED),
    ]
)

_APPEND = sql.SQL("""
WITH source AS ({source}),
numbered AS (
    SELECT s.*, %(audit_last_seq)s::bigint + row_number() OVER (ORDER BY s.n) AS seq
    FROM source AS s
),
hashed AS (
    SELECT u.*, audit_chain_hash({line}, %(audit_start)s::text) OVER (ORDER BY u.seq) AS hash
    FROM numbered AS u
),
inserted AS (
    INSERT INTO {events} (created_at, updated_at, chain_id, seq, lender_id, occurred_at,
        actor_type, actor_id, action, target_type, target_id, data, reason, ip, user_agent,
        prev_hash, hash, format)
    SELECT %(audit_now)s, %(audit_now)s, %(audit_chain)s, h.seq, %(audit_lender_id)s,
        %(audit_now)s, h.actor_type, h.actor_id, h.action, h.target_type, h.target_id, h.data,
        h.reason, h.ip, h.user_agent,
        coalesce(lag(h.hash) OVER (ORDER BY h.seq), %(audit_start)s), h.hash, {format}
    FROM hashed AS h
    RETURNING id, seq, prev_hash, hash, data
),
head AS (
    UPDATE {chains} AS c SET last_seq = t.seq, last_hash = t.hash
    FROM (SELECT seq, hash FROM inserted ORDER BY seq DESC LIMIT 1) AS t
    WHERE c.id = %(audit_chain)s
)
{result}
""")

_RETURNING = sql.SQL("SELECT id, seq, prev_hash, hash, data FROM inserted ORDER BY seq")
_COUNT = sql.SQL("SELECT count(*) FROM inserted")

# The columns of one event, as the sources below give them, and their array types.
SOURCE_COLUMNS = (
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "data",
    "reason",
    "ip",
    "user_agent",
)

_ARRAYS_SOURCE = sql.SQL(
    "SELECT * FROM unnest({arrays}) WITH ORDINALITY AS s({columns}, n)"
).format(
    arrays=sql.SQL(", ").join(
        sql.SQL("{}::{}[]").format(
            sql.Placeholder(f"audit_{name}"), sql.SQL("jsonb" if name == "data" else "text")
        )
        for name in SOURCE_COLUMNS
    ),
    columns=sql.SQL(", ").join(map(sql.Identifier, SOURCE_COLUMNS)),
)

_ONE_ACTOR_SOURCE = sql.SQL(
    "SELECT r.n, %(audit_actor_type)s AS actor_type, %(audit_actor_id)s AS actor_id, "
    "%(audit_action)s AS action, %(audit_target_type)s AS target_type, r.target_id, r.data, "
    "%(audit_reason)s AS reason, %(audit_ip)s AS ip, %(audit_user_agent)s AS user_agent "
    "FROM ({rows}) AS r"
)


def _append(source: sql.Composable, *, returning: bool) -> str:
    return _APPEND.format(
        source=source,
        line=_LINE,
        events=_EVENTS,
        chains=_CHAINS,
        format=sql.Literal(FORMAT_VERSION),
        result=_RETURNING if returning else _COUNT,
    ).as_string()


APPEND_ARRAYS = _append(_ARRAYS_SOURCE, returning=True)
"""Append events given as one array per column (``%(audit_<column>)s``, in the order of
the arrays) to a chain: numbers them on from the head (``%(audit_last_seq)s``), writes each
one's format 2 line (``hashing.event_line``), chains the hashes from ``%(audit_start)s``
with the ``audit_chain_hash`` window aggregate, inserts them and moves the head, in one
statement. Returns each event's id, seq, prev_hash, hash and data, in chain order. The
caller holds the chain head's row lock (``CHAIN_LOCK``); the head is updated by its primary
key."""


@cache
def append_select(rows: str) -> str:
    """``APPEND_ARRAYS`` for events all by one actor, with one action, target type and reason,
    one per row of ``rows``: a SELECT of ``(n, target_id text, data jsonb)`` written by the
    caller (named parameters), appended in the order of ``n``. Returns the count appended.
    Cached per ``rows``: each caller passes one fixed statement."""
    return _append(_ONE_ACTOR_SOURCE.format(rows=sql.SQL(rows)), returning=False)


PUBLIC_SPEC_COLUMNS = sql.SQL(
    "jsonb_to_recordset(%(pub_spec)s::jsonb) AS p(action text, type text, subject text, "
    "fields jsonb, when_path text[], when_in text[])"
)

PUBLIC_EVENTS_SOURCE = sql.SQL("""
SELECT e.id, e.seq, e.occurred_at, p.type,
    CASE WHEN p.subject = 'loan' THEN e.target_id ELSE e.data ->> 'loan_id' END::bigint
        AS loan_id,
    jsonb_build_object(
        'id', 'evt_' || e.id,
        'type', p.type,
        'timestamp', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', jsonb_strip_nulls(jsonb_build_object(
            'loan_id', CASE WHEN p.subject = 'loan' THEN e.target_id
                            ELSE e.data ->> 'loan_id' END::bigint,
            'device_id', CASE WHEN p.subject = 'device' THEN e.target_id::bigint END
        )) || coalesce((
            SELECT jsonb_object_agg(f.key, e.data #> f.path)
            FROM (SELECT key, ARRAY(SELECT jsonb_array_elements_text(value)) AS path
                  FROM jsonb_each(p.fields)) AS f
            WHERE e.data #> f.path IS NOT NULL AND e.data #> f.path <> 'null'::jsonb
        ), '{{}}'::jsonb)
    ) AS payload
FROM {events} AS e
JOIN {spec} ON p.action = e.action
    AND (p.when_path IS NULL OR coalesce(e.data #>> p.when_path, '') = ANY(p.when_in))
WHERE e.chain_id = %(pub_chain)s AND e.seq > %(pub_after)s AND e.seq <= %(pub_upto)s
    AND (%(pub_types)s::text[] IS NULL OR p.type = ANY(%(pub_types)s::text[]))
ORDER BY e.seq
LIMIT %(pub_limit)s
""").format(events=_EVENTS, spec=PUBLIC_SPEC_COLUMNS)
"""The public events of one chain (``%(pub_chain)s``) with seq in ``(%(pub_after)s,
%(pub_upto)s]``, of the types ``%(pub_types)s`` (NULL: all), at most ``%(pub_limit)s``, in
chain order: ``(id, seq, occurred_at, type, loan_id, payload)``. ``%(pub_spec)s`` is
``apps.audit.public.PROJECTIONS`` as JSON: which action becomes which type, on what
condition, with which fields of its data. Reads the chain's events by
``audit_event_chain_seq_unique`` (a range of seq: bounded however few are public); takes
no lock. A composable: the webhooks' projection inserts from it."""

PUBLIC_EVENTS = PUBLIC_EVENTS_SOURCE.as_string()

CHAIN_HEAD = (
    sql.SQL("SELECT id, last_seq FROM {chains} WHERE lender_id = %s")
    .format(chains=_CHAINS)
    .as_string()
)
"""(id, last_seq) of a lender's chain; one parameter, the lender. No lock: a reader's view
of how far the chain has gone (``audit_one_chain_per_lender``)."""
