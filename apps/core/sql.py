"""INSERT and SELECT statements written once, for the few hot paths that skip the ORM's
compiler.

``insert_sql`` composes the statement with ``psycopg.sql`` from the model's
metadata (the table and every column an ``Identifier``; every value a
parameter) and ``insert_values`` gives the values ``save(force_insert=True)``
would send, ``auto_now`` fields included. Django's cursor runs a composed
statement as it runs a string (tests/core/test_sql.py). ``select_columns`` is a
model's select list and ``select_rows`` runs a statement that selects it and loads
the rows as the ORM would.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.db import OperationalError, connection, models
from psycopg import sql

from apps.core.models import IdempotencyRecord, TaskOutbox


def _columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _column(field: models.Field[Any, Any]) -> str:
    if field.column is None:  # a concrete field always has one; the stubs allow None
        raise ValueError(f"{field} has no column")
    return field.column


def insert_sql(
    model: type[models.Model],
    *,
    rows: int = 1,
    conflict: tuple[str, ...] = (),
    returning: bool = True,
) -> sql.Composed:
    """``INSERT`` of ``rows`` rows (every column but the id), optionally
    ``ON CONFLICT (...) DO NOTHING``, optionally ``RETURNING id`` (in VALUES order)."""
    fields = _columns(model)
    row = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * len(fields)))
    columns: list[sql.Composable] = [sql.Identifier(_column(f)) for f in fields]
    statement = sql.SQL("INSERT INTO {table} ({columns}) VALUES {rows}").format(
        table=sql.Identifier(model._meta.db_table),
        columns=sql.SQL(", ").join(columns),
        rows=sql.SQL(", ").join([row] * rows),
    )
    if conflict:
        statement += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(
            sql.SQL(", ").join(sql.Identifier(column) for column in conflict)
        )
    if returning:
        statement += sql.SQL(" RETURNING {}").format(sql.Identifier(_column(model._meta.pk)))
    return statement


def insert_values(instance: models.Model) -> list[Any]:
    return [
        f.get_db_prep_save(f.pre_save(instance, add=True), connection)
        for f in _columns(type(instance))
    ]


def mark_saved(instance: models.Model, pk: int) -> None:
    """What ``save()`` leaves on an instance it inserted."""
    instance.pk = pk
    instance._state.adding, instance._state.db = False, connection.alias


M = TypeVar("M", bound=models.Model)


def select_columns(model: type[models.Model], *, table: str = "") -> sql.SQL:
    """Every concrete column of ``model`` (its id among them), each qualified by ``table`` if
    given, in the order of its fields: the select list whose rows ``select_rows`` loads.
    Rendered once to its text: psycopg would quote each identifier again at every run."""
    qualifier = [table] if table else []
    columns = sql.SQL(", ").join(
        sql.Identifier(*qualifier, _column(f)) for f in model._meta.concrete_fields
    )
    return sql.SQL(columns.as_string())


def select_rows(model: type[M], statement: str | sql.Composable, params: Any) -> list[M]:
    """Run ``statement``, which selects ``select_columns(model)``, and load its rows as the
    ORM loads a row (each field's ``from_db_value``, then ``Model.from_db``). For the
    statements run on every request: ``Model.objects.raw`` maps the columns to fields and
    looks their converters up at every call, which cost more CPU than the query."""
    names, converters = _loading(model)
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows: Sequence[Sequence[Any]] = cursor.fetchall()
    found = []
    for row in rows:
        if converters:
            row = list(row)
            for i, convert in converters:
                row[i] = convert(row[i], None, connection)
        found.append(model.from_db(connection.alias, names, row))
    return found


@functools.cache
def _loading(
    model: type[models.Model],
) -> tuple[list[str], list[tuple[int, Callable[..., Any]]]]:
    """``model``'s field names in column order, and the converter of each column that has
    one (``from_db_value``: a JSON field's, for one), as Django's own loading applies them."""
    fields = model._meta.concrete_fields
    converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
    return [f.attname for f in fields], converters


def array_literal(values: Iterable[int | bool | str | None]) -> str:
    """The PostgreSQL array literal of ``values`` (integers, booleans, strings, NULLs): one
    parameter, cast in the statement to its array type (``%(ids)s::bigint[]``).

    For the bulk statements' arrays of thousands of elements: the driver adapts a list
    element by element (a pattern search per string), several times slower than these
    string joins. Every string element is quoted, so any text is safe."""
    values = list(values)
    if all(type(value) is int for value in values):  # ids, the commonest: no per-element call
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(map(_element, values)) + "}"


def _element(value: int | bool | str | None) -> str:
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


T = TypeVar("T")

_DEADLOCK_DETECTED = "40P01"


def deadlock_retried(function: Callable[[], T], *, attempts: int = 3) -> T:
    """``function()``, which runs in a transaction of its own, run again when PostgreSQL
    chose its transaction as a deadlock's victim (rolled back whole, so safe to run again;
    the other transaction has gone on by then)."""
    for attempt in range(1, attempts + 1):
        try:
            return function()
        except OperationalError as exc:
            if (
                getattr(exc.__cause__, "sqlstate", None) != _DEADLOCK_DETECTED
                or attempt == attempts
            ):
                raise
    raise AssertionError("unreachable")


# --- the task outbox (apps/core/outbox.py): written by every request that starts a task ---


@functools.cache
def outbox_insert(*, rows: int) -> sql.SQL:
    """``bulk_create`` of ``rows`` outbox rows (``insert_values`` of each), returning their
    ids in order; composed and rendered once per width. Locks: the new rows only."""
    return sql.SQL(insert_sql(TaskOutbox, rows=rows).as_string())


OUTBOX_DELETE = sql.SQL(
    sql.SQL("DELETE FROM {} WHERE id = ANY(%s::bigint[])")
    .format(sql.Identifier(TaskOutbox._meta.db_table))
    .as_string()
)
"""Delete the outbox rows whose ids are in the array parameter (the broker took their
tasks). Locks: those rows. Index: the primary key."""


IDEMPOTENCY_LOCK = sql.SQL("SELECT pg_advisory_lock(%s, %s)")
"""Take the session's advisory lock (namespace, key) of one idempotency key, waiting while
another request holds it: concurrent repeats of one POST run one after the other. Released
by ``IDEMPOTENCY_UNLOCK`` (or when the connection ends)."""

IDEMPOTENCY_UNLOCK = sql.SQL("SELECT pg_advisory_unlock(%s, %s)")
"""Release the lock ``IDEMPOTENCY_LOCK`` took."""

IDEMPOTENCY_RECORD_FIND = sql.SQL(
    sql.SQL("SELECT {columns} FROM {records} WHERE scope = %s AND key = %s")
    .format(
        columns=select_columns(IdempotencyRecord),
        records=sql.Identifier(IdempotencyRecord._meta.db_table),
    )
    .as_string()
)
"""The stored answer of (scope ``%s``, key ``%s``), if any, to be loaded with ``select_rows``:
read by every POST with an ``Idempotency-Key``, under the key's advisory lock. Takes no
lock. Index: ``idempotency_scope_key_unique``."""

IDEMPOTENCY_RECORD_INSERT = sql.SQL(insert_sql(IdempotencyRecord).as_string())
"""Store an answer (``insert_values`` of the record): the caller holds the key's advisory
lock and found none, so the row is new (a second raises IntegrityError on
``idempotency_scope_key_unique``). Returns its id. Locks: the new row."""
