"""The hand-written statements of customers (apps/customers/sql.py), each against a Python
oracle of the same rule, and each EXPLAINed to show it uses the index it is written for."""

import json
from typing import Any

import pytest
from django.db import connection, transaction
from psycopg import sql

from apps.customers import sql as customer_sql
from apps.customers.models import Customer
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_customer_locales_are_the_locales_of_the_customers_asked_for(lender_a) -> None:
    customers = [
        CustomerFactory(lender=lender_a, locale=locale) for locale in ("en", "sw", "es", "en")
    ]
    asked = [customers[2].pk, customers[0].pk, customers[1].pk, 10**12]
    with connection.cursor() as cursor:
        cursor.execute(customer_sql.CUSTOMER_LOCALES, [asked])
        found = dict(cursor.fetchall())
    oracle = {c.pk: c.locale for c in Customer.objects.all() if c.pk in asked}
    assert found == oracle
    assert len(found) == 3


def _indexes(plan: Any) -> set[str]:
    if isinstance(plan, dict):
        own = {plan["Index Name"]} if "Index Name" in plan else set()
        return own.union(*(_indexes(value) for value in plan.values()))
    if isinstance(plan, list):
        return set().union(*(_indexes(value) for value in plan))
    return set()


def test_customer_locales_reads_the_primary_key(lender_a) -> None:
    customers = CustomerFactory.create_batch(3, lender=lender_a)
    # sequential scans off: a test's table is small next to a real one
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            sql.SQL("EXPLAIN (FORMAT JSON) {}").format(customer_sql.CUSTOMER_LOCALES),
            [[c.pk for c in customers]],
        )
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    assert f"{Customer._meta.db_table}_pkey" in _indexes(plan)
