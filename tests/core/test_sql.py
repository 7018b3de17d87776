"""The SQL helpers of apps/core/sql.py: the INSERT composed from a model's metadata (against
what the ORM stores), the bulk statements' array literals (read back by PostgreSQL) and the
deadlock retry."""

import json
import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from apps.core.idempotency import idempotency_record_find, idempotency_record_store
from apps.core.models import IdempotencyRecord
from apps.core.sql import (
    OUTBOX_DELETE,
    array_literal,
    deadlock_retried,
    insert_sql,
    insert_values,
    mark_saved,
    outbox_insert,
    select_columns,
    select_rows,
)
from apps.lenders.models import Lender
from tests.lenders.factories import LenderFactory
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


def test_the_insert_names_the_table_and_every_column_but_the_id_as_identifiers() -> None:
    columns = ", ".join(f'"{f.column}"' for f in Lender._meta.concrete_fields if not f.primary_key)
    row = "(" + ", ".join(["%s"] * (columns.count(",") + 1)) + ")"
    one = re.fullmatch(
        r'INSERT INTO "lenders_lender" \((.*)\) VALUES (.*) RETURNING "id"',
        insert_sql(Lender).as_string(),
    )
    assert one is not None
    assert one.groups() == (columns, row)
    two = re.fullmatch(
        r'INSERT INTO "lenders_lender" \((.*)\) VALUES (.*) ON CONFLICT \("slug"\) DO NOTHING',
        insert_sql(Lender, rows=2, conflict=("slug",), returning=False).as_string(),
    )
    assert two is not None
    assert two.groups() == (columns, f"{row}, {row}")


def test_an_inserted_row_reads_back_as_the_orm_would_have_stored_it() -> None:
    """The oracle: ``save()`` of the same instance, field by field."""
    by_statement, by_orm = LenderFactory.build(slug="by-sql"), LenderFactory.build(slug="by-orm")
    with connection.cursor() as cursor:
        cursor.execute(insert_sql(Lender, conflict=("slug",)), insert_values(by_statement))
        mark_saved(by_statement, cursor.fetchone()[0])
        cursor.execute(insert_sql(Lender, conflict=("slug",)), insert_values(by_statement))
        assert cursor.fetchone() is None  # the slug is taken: no row, no error
    by_orm.save()
    stored, saved = Lender.objects.get(pk=by_statement.pk), Lender.objects.get(pk=by_orm.pk)
    differs = {"id", "slug", "name", "created_at", "updated_at"}
    for field in Lender._meta.concrete_fields:
        if field.attname not in differs:
            assert getattr(stored, field.attname) == getattr(saved, field.attname), field.name
    assert stored.created_at is not None
    assert stored.slug == "by-sql"
    assert not by_statement._state.adding


def test_djangos_cursor_runs_a_composed_statement_and_logs_it_as_text(lender_a) -> None:
    statement = sql.SQL("SELECT slug FROM {} WHERE id = %(id)s").format(
        sql.Identifier(Lender._meta.db_table)
    )
    with CaptureQueriesContext(connection) as captured, connection.cursor() as cursor:
        cursor.execute(statement, {"id": lender_a.pk})
        assert cursor.fetchone() == (lender_a.slug,)
    logged = captured.captured_queries[-1]["sql"]
    assert '"lenders_lender"' in logged
    assert logged.endswith(f"= {lender_a.pk}")
    found = list(
        Lender.objects.raw(sql.SQL("SELECT * FROM {}").format(sql.Identifier("lenders_lender")))
    )
    assert lender_a in found


def test_selected_rows_load_as_the_orm_loads_them(lender_a, lender_b) -> None:
    """The oracle: the same rows read by the ORM, field by field, for a model with JSON
    fields (their converter) and one without, through a qualified select list."""
    from apps.integrations.models import ProviderAccount

    ProviderAccount.objects.bulk_create(
        ProviderAccount(
            lender=lender, provider="stripe", settings={"n": [1, "ä"]}, secret_names=["a"]
        )
        for lender in (lender_a, lender_b)
    )
    for model in (Lender, ProviderAccount):
        statement = sql.SQL("SELECT {} FROM {} AS t ORDER BY t.id").format(
            select_columns(model, table="t"), sql.Identifier(model._meta.db_table)
        )
        loaded = select_rows(model, statement, None)
        oracle = list(model._default_manager.order_by("pk"))
        assert [row.pk for row in loaded] == [row.pk for row in oracle] != []
        for row, read in zip(loaded, oracle, strict=True):
            assert type(row) is model
            assert (row._state.adding, row._state.db) == (False, "default")
            for field in model._meta.concrete_fields:
                assert getattr(row, field.attname) == getattr(read, field.attname), field.name
    assert select_columns(Lender).as_string().startswith('"id", "created_at"')


def test_the_outbox_rows_are_written_and_deleted_as_the_orm_would() -> None:
    """``outbox_insert`` against ``bulk_create`` of the same rows, and ``OUTBOX_DELETE``
    deletes exactly the ids given, by the primary key."""
    from apps.core.models import TaskOutbox
    from tests.explain import plan_of

    calls = [{"payment_id": 7}, {"loan_ids": [1, 2], "on": "2026-01-02"}]
    by_orm = TaskOutbox.objects.bulk_create(TaskOutbox(task="t.x", kwargs=k) for k in calls)
    by_sql = [TaskOutbox(task="t.x", kwargs=k) for k in calls]
    with connection.cursor() as cursor:
        cursor.execute(
            outbox_insert(rows=len(by_sql)), [v for row in by_sql for v in insert_values(row)]
        )
        ids = [pk for (pk,) in cursor.fetchall()]
    stored = {row.pk: row for row in TaskOutbox.objects.all()}
    assert len(ids) == len(calls)
    assert min(ids) > by_orm[-1].pk
    for pk, orm in zip(ids, by_orm, strict=True):
        assert (stored[pk].task, stored[pk].kwargs) == (orm.task, orm.kwargs)
        assert stored[pk].created_at is not None
    with connection.cursor() as cursor:
        cursor.execute(OUTBOX_DELETE, [array_literal([ids[0], by_orm[1].pk, 10**12])])
    assert set(TaskOutbox.objects.values_list("pk", flat=True)) == {by_orm[0].pk, ids[1]}
    with plan_of(OUTBOX_DELETE.as_string(), [array_literal(ids)]) as plan:
        assert f"{TaskOutbox._meta.db_table}_pkey" in plan


def test_idempotency_records_are_stored_and_found_as_the_orm_would() -> None:
    """The stored answer of a POST (``IDEMPOTENCY_RECORD_INSERT``) reads back through the ORM
    as ``create()`` would have stored it, ``IDEMPOTENCY_RECORD_FIND`` finds it by (scope, key)
    only, and a second answer to the same key is refused by the unique constraint."""
    body = {"id": 7, "amount": Decimal("10.50"), "at": datetime(2026, 1, 2, tzinfo=UTC)}
    stored = idempotency_record_store(
        scope="lender:1", key="k-1", fingerprint="f" * 64, status_code=201, body=body
    )
    orm = IdempotencyRecord.objects.get(pk=stored.pk)
    assert (orm.scope, orm.key, orm.fingerprint, orm.status_code) == (
        "lender:1",
        "k-1",
        "f" * 64,
        201,
    )
    assert orm.body == {"id": 7, "amount": "10.50", "at": "2026-01-02T00:00:00Z"}
    assert orm.created_at is not None
    found = idempotency_record_find(scope="lender:1", key="k-1")
    fields = [f.attname for f in IdempotencyRecord._meta.concrete_fields]
    assert [getattr(found, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert idempotency_record_find(scope="lender:2", key="k-1") is None
    assert idempotency_record_find(scope="lender:1", key="k-2") is None
    with pytest.raises(IntegrityError), transaction.atomic():
        idempotency_record_store(
            scope="lender:1", key="k-1", fingerprint="0" * 64, status_code=201, body={}
        )
