"""Hand-written SQL of the integrations: the reads on every provider callback's path.

Each statement is a module-level constant composed with ``psycopg.sql`` (the table from the
model's ``_meta.db_table``; every value a parameter), followed by its docstring: what it
does, the locks it takes and the index it is written for; the rows are loaded with
``apps.core.sql.select_rows``. tests/integrations/test_sql.py
holds each to the queryset it replaces and to its plan.
"""

from __future__ import annotations

from psycopg import sql

from apps.core.sql import select_columns
from apps.integrations.models import ProviderAccount

_accounts = sql.Identifier(ProviderAccount._meta.db_table)

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
