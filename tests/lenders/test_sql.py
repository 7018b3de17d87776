"""The hand-written statements of lenders (apps/lenders/sql.py), each held to the queryset it
stands for."""

import pytest

from apps.core.sql import select_rows
from apps.lenders.models import ApiKey
from apps.lenders.sql import API_KEY_BY_PREFIX
from tests.lenders.factories import api_key_for

pytestmark = pytest.mark.django_db


def test_api_key_by_prefix_reads_the_keys_row(lender_a, lender_b) -> None:
    """The key of a prefix, every field as the ORM loads it, and its lender's id; nothing for
    an unknown prefix."""
    keys = [api_key_for(lender, scopes=["devices:read"])[0] for lender in (lender_a, lender_b)]
    for key in keys:
        (found,) = select_rows(ApiKey, API_KEY_BY_PREFIX, [key.prefix])
        orm = ApiKey.objects.get(prefix=key.prefix)
        fields = [f.attname for f in ApiKey._meta.concrete_fields]
        assert [getattr(found, f) for f in fields] == [getattr(orm, f) for f in fields]
        assert found.lender_id == key.lender_id
    assert select_rows(ApiKey, API_KEY_BY_PREFIX, ["nothere"]) == []
