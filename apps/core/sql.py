"""INSERT statements written once, for the few hot paths that skip the ORM's compiler.

``insert_sql`` builds the statement from the model's metadata (identifiers are
never user input; every value is a parameter) and ``insert_values`` gives the
values ``save(force_insert=True)`` would send, ``auto_now`` fields included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.db import OperationalError, connection, models


def _columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def insert_sql(
    model: type[models.Model],
    *,
    rows: int = 1,
    conflict: tuple[str, ...] = (),
    returning: bool = True,
) -> str:
    """``INSERT`` of ``rows`` rows (every column but the id), optionally
    ``ON CONFLICT (...) DO NOTHING``, optionally ``RETURNING id`` (in VALUES order)."""
    fields = _columns(model)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = "INSERT INTO {} ({}) VALUES {}".format(  # noqa: S608  (identifiers from model metadata)
        model._meta.db_table, ", ".join(f.column for f in fields), ", ".join([row] * rows)
    )
    if conflict:
        sql += " ON CONFLICT ({}) DO NOTHING".format(", ".join(conflict))
    return sql + (" RETURNING id" if returning else "")


def insert_values(instance: models.Model) -> list[Any]:
    return [
        f.get_db_prep_save(f.pre_save(instance, add=True), connection)
        for f in _columns(type(instance))
    ]


def mark_saved(instance: models.Model, pk: int) -> None:
    """What ``save()`` leaves on an instance it inserted."""
    instance.pk = pk
    instance._state.adding, instance._state.db = False, connection.alias


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
