"""The hand-written SQL of customers: each statement written once, composed from the models.

Each is a named constant composed with ``psycopg.sql`` from the models'
``_meta.db_table``; every value is a parameter. Each docstring says what the
statement does and which locks it takes; tests/customers/test_sql.py checks each
against a Python oracle of its rule and, with EXPLAIN, that it uses the index it
is written for.
"""

from __future__ import annotations

from psycopg import sql

from apps.customers.models import Customer

CUSTOMER_LOCALES = sql.SQL("SELECT id, locale FROM {customers} WHERE id = ANY(%s)").format(
    customers=sql.Identifier(Customer._meta.db_table)
)
"""(customer id, locale) of each customer of the ids in one array parameter (a sweep asks
for thousands at once). Takes no lock. Index: the primary key."""
