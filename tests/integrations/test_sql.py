"""The hand-written statements of apps/integrations/sql.py: each held to the queryset it
replaces, and EXPLAINed to show it uses the index it is written for."""

import itertools

import pytest
from django.db import connection
from psycopg import sql

from apps.integrations import sql as integration_sql
from apps.integrations.models import ProviderAccount
from apps.integrations.selectors import (
    provider_account_for_lender_slug,
    provider_account_get,
    provider_account_in_use,
)
from apps.lenders.models import Lender
from tests.explain import plan_of
from tools.bench._seed import copies

pytestmark = pytest.mark.django_db


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


def test_an_account_by_its_lenders_slug_is_the_lenders_own(accounts, lender_a, lender_b) -> None:
    asked = 0
    for slug, provider in itertools.product(
        (lender_a.slug, lender_b.slug, "nobody", lender_a.slug.upper()), ("mpesa", "stripe")
    ):
        oracle = ProviderAccount.objects.filter(lender__slug=slug, provider=provider).first()
        found = provider_account_for_lender_slug(lender_slug=slug, provider=provider)
        assert (found and (found.pk, found.lender_id, found.settings)) == (
            oracle and (oracle.pk, oracle.lender_id, oracle.settings)
        ), (slug, provider)
        asked += found is not None
    assert asked == 3  # lender A's two accounts, in use or not, and lender B's


@pytest.fixture
def many_lenders(lender_a) -> None:
    """Thousands of lenders beside the test's (copies of lender A under other slugs),
    analyzed: enough that the planner finds a lender by its slug's index rather than by
    walking a table of two."""
    Lender.objects.bulk_create(
        copies(lender_a, [{"name": f"Volume {n}", "slug": f"volume-{n}"} for n in range(3000)])
    )
    with connection.cursor() as cursor:
        for model in (Lender, ProviderAccount):
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(model._meta.db_table)))


def test_each_statement_uses_the_index_it_is_written_for(accounts, many_lenders, lender_a) -> None:
    for name in ("PROVIDER_ACCOUNT_GET", "PROVIDER_ACCOUNT_IN_USE"):
        statement = getattr(integration_sql, name).as_string()
        with plan_of(statement, [lender_a.pk, "mpesa"]) as plan:
            assert "provider_account_one_per_lender" in plan, (name, plan)
    statement = integration_sql.PROVIDER_ACCOUNT_BY_LENDER_SLUG.as_string()
    with plan_of(statement, [lender_a.slug, "mpesa"]) as plan:
        assert "provider_account_one_per_lender" in plan, plan
        # the slug's unique index, or the pattern index Django gives a slug beside it
        assert "lenders_lender_slug_" in plan, plan
