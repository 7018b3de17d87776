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
