"""The hand-written statements of apps/integrations/sql.py: each held to the queryset it
replaces, and EXPLAINed to show it uses the index it is written for."""

import itertools
import json
from typing import Any

import pytest
from django.db import connection, transaction
from psycopg import sql

from apps.integrations import sql as integration_sql
from apps.integrations.models import ProviderAccount
from apps.integrations.selectors import provider_account_get, provider_account_in_use

pytestmark = pytest.mark.django_db


def plan_indexes(statement: sql.Composable, params: Any) -> set[str]:
    """The indexes the plan of ``statement`` reads, sequential scans off."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement), params)
        (plan,) = cursor.fetchone()
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Index Name" in node:
                found.add(node["Index Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(plan) if isinstance(plan, str) else plan)
    return found


@pytest.fixture
def accounts(lender_a, lender_b) -> list[ProviderAccount]:
    """M-Pesa in use and Stripe not for lender A; Stripe in use for lender B."""
    return ProviderAccount.objects.bulk_create(
        ProviderAccount(lender=lender, provider=provider, enabled=enabled, settings={"n": n})
        for n, (lender, provider, enabled) in enumerate(
            ((lender_a, "mpesa", True), (lender_a, "stripe", False), (lender_b, "stripe", True))
        )
    )


def test_an_account_is_the_lenders_own_with_the_provider_in_use_or_not(
    accounts, lender_a, lender_b
) -> None:
    asked = 0
    for lender, provider in itertools.product((lender_a, lender_b), ("mpesa", "stripe", "generic")):
        mine = ProviderAccount.objects.filter(lender=lender, provider=provider)
        for selector, oracle in (
            (provider_account_get, mine.first()),
            (provider_account_in_use, mine.filter(enabled=True).first()),
        ):
            found = selector(lender_id=lender.pk, provider=provider)
            assert (found and (found.pk, found.enabled, found.settings)) == (
                oracle and (oracle.pk, oracle.enabled, oracle.settings)
            ), (selector, lender, provider)
            asked += found is not None
    assert asked == 5  # three accounts, two of them in use


def test_each_statement_uses_the_index_it_is_written_for(accounts, lender_a) -> None:
    for name in ("PROVIDER_ACCOUNT_GET", "PROVIDER_ACCOUNT_IN_USE"):
        used = plan_indexes(getattr(integration_sql, name), [lender_a.pk, "mpesa"])
        assert "provider_account_one_per_lender" in used, (name, used)
