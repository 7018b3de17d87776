"""The bulk statements' array literals, read back by PostgreSQL."""

import json

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.sql import array_literal

pytestmark = pytest.mark.django_db

# any text PostgreSQL stores (no NUL), quotes, backslashes, braces and "NULL" included
texts = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


def read_back(literal: str, type_: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{type_}", [literal])
        return cursor.fetchone()[0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), texts, st.sampled_from(['"', "\\", "{}", ",", "NULL", " a "])))
)
def test_text_arrays_read_back_as_given(values) -> None:
    assert read_back(array_literal(values), "text[]") == values


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))))
def test_bigint_arrays_read_back_as_given(values) -> None:
    assert read_back(array_literal(values), "bigint[]") == values


def test_booleans_and_json_documents_read_back_as_given() -> None:
    assert read_back(array_literal([True, False, None]), "boolean[]") == [True, False, None]
    documents = [['a"b'], {"k": "{,}"}]
    back = read_back(array_literal([json.dumps(d) for d in documents]), "jsonb[]")
    assert [json.loads(d) if isinstance(d, str) else d for d in back] == documents
