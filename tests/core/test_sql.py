"""The bulk statements' array literals, read back by PostgreSQL."""

import json
import threading
import time

import pytest
from django.db import DataError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.sql import array_literal, deadlock_retried
from tests.waiting import backend_pid, wait_until_waiting_for_a_lock

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


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_victim_is_run_again_and_succeeds(lender_a, lender_b) -> None:
    """A real deadlock: the retried function locks A then B while another transaction locks
    B then A. The function waits first, so PostgreSQL makes it the victim; run again, it
    succeeds once the other has committed."""
    from apps.lenders.models import Lender

    holds_a, holds_b, attempts, errors, victim_pid = (
        threading.Event(),
        threading.Event(),
        [],
        [],
        [],
    )

    def lock(pk: int) -> None:
        Lender.objects.select_for_update().get(pk=pk)

    def victim() -> str:
        attempts.append(1)
        victim_pid.append(backend_pid())
        with transaction.atomic():
            lock(lender_a.pk)
            holds_a.set()
            holds_b.wait(10)
            lock(lender_b.pk)  # waits first: its deadlock check runs first
        return "done"

    def other() -> None:
        try:
            with transaction.atomic():
                lock(lender_b.pk)
                holds_b.set()
                holds_a.wait(10)
                wait_until_waiting_for_a_lock(victim_pid[0])  # the victim waits for B first
                # and its deadlock check (deadlock_timeout after its wait began) runs first by
                # a clear margin, even on a loaded machine: PostgreSQL aborts the backend whose
                # check finds the cycle
                time.sleep(0.5)
                lock(lender_a.pk)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert deadlock_retried(victim) == "done"
    finally:
        thread.join(10)
    assert (len(attempts), errors) == (2, [])


@pytest.mark.django_db(transaction=True)
def test_other_errors_are_not_run_again() -> None:
    attempts = []

    def broken() -> None:
        attempts.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")

    with pytest.raises(DataError):
        deadlock_retried(broken)
    assert len(attempts) == 1
