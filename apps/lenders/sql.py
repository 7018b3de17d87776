"""The hand-written SQL of lenders: each statement written once, composed from the models.

As in the other apps' sql.py: a module-level constant composed with ``psycopg.sql`` from the
model's ``_meta.db_table``, every value a parameter, rendered once to the text the cursor
sends, followed by a docstring saying what it does, the locks it takes and the index it is
written for. tests/lenders/test_sql.py holds each to the queryset it stands for.
"""

from __future__ import annotations

from psycopg import sql

from apps.core.sql import select_columns
from apps.lenders.models import ApiKey

API_KEY_BY_PREFIX = sql.SQL(
    sql.SQL("SELECT {columns} FROM {keys} WHERE prefix = %s")
    .format(columns=select_columns(ApiKey), keys=sql.Identifier(ApiKey._meta.db_table))
    .as_string()
)
"""The API key with prefix ``%s`` (at most one: the prefix is unique), every column, to be
loaded with ``select_rows``; its lender is the row's ``lender_id``, the only lender the call
is scoped to. Read on every call of the lender API: where the queryset cost more to compile
than to run. Takes no lock. Index: the unique index of ``prefix``."""
