"""EXPLAIN for the tests of each app's statements (``tests/<app>/test_sql.py``)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction


@contextmanager
def plan_of(statement: str, params: Any) -> Iterator[str]:
    """The plan PostgreSQL gives ``statement`` when it may use an index (the test tables are
    small enough that a sequential scan would otherwise win)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + statement, params)
        yield "\n".join(row[0] for row in cursor.fetchall())
