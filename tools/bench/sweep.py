"""bench-sweep: the restriction sweep against its set-based floor, on PostgreSQL.

Seeds, in a dedicated database dropped and re-created on each run, N active
loans of 12 monthly installments each across 20 lenders, every loan with its
own customer, consent and enrolled phone (desired state version 1). One
template per lender (lender, policy, product, counter, customer, consent and
loan) is made through the real services; the N loans are copied from them in
SQL (``INSERT ... SELECT FROM generate_series``), so that a million loans seed
in minutes, and the templates are then marked paid off. Loan ids are
interleaved across lenders, as loans signed over time are (``--layout
blocks`` gives each lender one contiguous block instead).

Delinquency, from a hash of the loan's number: 36% of the loans are current
(the oldest unpaid installment falls due within 30 days), 64% are 1 to 120
days late (uniform), and every loan starts at stage ``none``. With 3 grace
days, 62.4% of the loans change stage on the first sweep (624,000 at 1M).

Then, in the same run:

(a) the floor: one SQL statement that classifies every active loan with the
    product's classification (``apps.collections.sql.classify``: days overdue
    of its oldest unpaid installment past grace, the pinned ladder, a pause, a
    block or a lock only where a confirmed notice told of it: none in the seed,
    so late loans stop at ``alarm`` in both) and raises the loan's stage where
    it must rise, and nothing else; run inside a transaction that is rolled back, then the loan table
    vacuumed (which also truncates the pages the rolled-back versions took,
    so the sweep finds the table as seeded). It runs twice and the second
    run, on a warm cache, is the reference;
(b) the sweep: ``loan_stage_sweep`` for every range of every lender given by
    ``loan_sweep_ranges(size=SWEEP_RANGE_SIZE)``, serially, as the Celery
    range tasks run it (stage changes, desired states, push outbox, history,
    audit events); then again on unchanged data, which must change nothing;
(c) the overdue notices each range task queues after its commit (a task of
    its own, ``overdue_notices_queue``: messages rendered in each customer's
    language), every range once, timed apart from the sweep.

Prints both times, the ratios to the floor, the counts of what was written,
where the sweep's time goes (statements timed through an execute wrapper and
a few service functions wrapped with a timer, here, not in the app), and the
peak memory. ``--workers 2`` also runs both sweeps with the ranges spread
over a pool of processes, on a copy of the freshly seeded database.

The push relay the sweep starts after each commit is enqueued, not run: the
bench sends the task to a Redis database of its own (13), which it purges.

    make bench-sweep                  # N=100000: about 2.5 minutes on 2 cores
    make bench-sweep N=1000000 W=2    # about 17 minutes: seed 6, sweeps 4, workers 3
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import zip_longest
from multiprocessing import get_context
from typing import Any
from urllib.parse import urlparse, urlunparse

from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib

DATABASE = "smartcollection_bench_sweep"
BROKER_URL = "redis://127.0.0.1:6379/13"  # the relay kicks go here, purged at the end
LENDERS = 20
INSTALLMENTS = 12
GRACE_DAYS = 3
LATE_PER_MILLE = 640  # loans late by 1..MAX_DAYS_LATE days; the rest are current
MAX_DAYS_LATE = 120
SEED_CHUNK = 100_000  # loans per seeding transaction
RATIO_TARGET = 3.0  # sweep / floor, at 1M loans
SECOND_TARGET = 2.0  # second sweep (nothing to change) / floor


# --- databases ----------------------------------------------------------------------


def server_url(database: str) -> str:
    base = os.environ.get(
        "DATABASE_URL", "postgres://smartcollection:smartcollection@127.0.0.1:5432/smartcollection"
    )
    return urlunparse(urlparse(base)._replace(path=f"/{database}", scheme="postgresql"))


def admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(server_url("postgres"), autocommit=True) as conn:
        conn.execute(statement)


def drop_database(name: str) -> None:
    admin(f'DROP DATABASE IF EXISTS "{name}"')


def clone_database(source: str, target: str) -> float:
    from django.db import connections

    connections.close_all()
    drop_database(target)
    started = time.perf_counter()
    admin(f'CREATE DATABASE "{target}" TEMPLATE "{source}" STRATEGY FILE_COPY')
    return time.perf_counter() - started


def use_database(name: str) -> None:
    from django.db import connections

    connections.close_all()
    connections.databases["default"]["NAME"] = name


def sql(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def scalar(statement: str, params: Any = None) -> Any:
    return sql(statement, params)[0][0]


# --- seeding ------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    lender_id: int
    customer_id: int
    challenge_id: int
    consent_id: int
    loan_id: int
    key_version: int


def seed_templates(lenders: int) -> list[Template]:
    """One lender with its policy, product, counter and one loan signed through the real
    services, per lender: the rows the bulk seed copies."""
    from django.db import transaction

    from apps.collections.services import loan_sign
    from apps.core.actor import Actor
    from apps.core.money import Money
    from apps.customers.services import consent_record_demo_seed, customer_get_or_create
    from apps.devices.selectors import lender_key_version_current
    from apps.lenders.models import LoanProduct
    from apps.lenders.services import (
        default_stages,
        lender_create,
        loan_product_save,
        restriction_policy_create,
    )
    from apps.retailers.services import demo_counter

    actor = Actor.system()
    templates = []
    for k in range(lenders):
        with transaction.atomic():
            lender = lender_create(
                name=f"Sweep {k:02d}",
                slug=f"sweep-{k:02d}",
                country="KE",
                currency="KES",
                timezone="Africa/Nairobi",
                locale="en",
                actor=actor,
            )
            restriction_policy_create(
                lender=lender,
                name="Standard",
                stages=default_stages("en", country="KE"),
                actor=actor,
            )
            product = loan_product_save(
                product=LoanProduct(
                    lender=lender,
                    name="12m",
                    installments=INSTALLMENTS,
                    frequency="monthly",
                    interest_rate_percent=Decimal(3),
                    origination_fee_percent=Decimal(1),
                    grace_days=GRACE_DAYS,
                ),
                actor=actor,
            )
            shop, clerk = demo_counter(lender)
            customer, _ = customer_get_or_create(
                lender=lender,
                full_name=f"Sweep template {k}",
                phone=f"07990000{k:02d}",
                national_id=f"95{k:06d}",
                actor=actor,
            )
            consent = consent_record_demo_seed(
                customer=customer,
                text="Benchmark terms",
                text_version="bench",
                clerk_id=clerk.user_id,
                shop_id=shop.pk,
                actor=actor,
            )
            loan = loan_sign(
                customer=customer,
                consent=consent,
                product=product,
                shop_id=shop.pk,
                device_price=Money(Decimal(12000), "KES"),
                down_payment=Money(Decimal(2000), "KES"),
                actor=actor,
            )
        templates.append(
            Template(
                lender_id=lender.pk,
                customer_id=customer.pk,
                challenge_id=consent.challenge_id,
                consent_id=consent.pk,
                loan_id=loan.pk,
                key_version=lender_key_version_current(lender_id=lender.pk),
            )
        )
    return templates


def insert_select(
    model: Any, *, source: str, values: dict[str, str], params: dict[str, Any], copy: bool
) -> str:
    """``INSERT INTO model SELECT ...`` over every concrete column: ``values`` gives the SQL
    of some; the others are the template row ``t``'s (``copy``) or the field's default."""
    from django.db import connection

    quote = connection.ops.quote_name
    columns, exprs = [], []
    for f in model._meta.concrete_fields:
        columns.append(quote(f.column))
        if f.column in values:
            exprs.append(values[f.column])
        elif copy:
            exprs.append(f"t.{quote(f.column)}")
        else:
            default = f.get_db_prep_save(f.get_default(), connection)
            if default is None and not f.null:
                raise RuntimeError(f"{model.__name__}.{f.name}: the seed gives it no value")
            params[f"d_{f.column}"] = default
            exprs.append(f"CAST(%(d_{f.column})s AS {f.db_type(connection)})")
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(exprs)} FROM {source}"
    )


# The seeded loan number n (0-based) belongs to lender k = n % lenders (interleaved ids)
# or n // per_lender (blocks); each row's id is its table's base plus n.
_TPL = """(SELECT * FROM unnest(%(t_k)s::int[], %(t_lender)s::bigint[], %(t_customer)s::bigint[],
        %(t_challenge)s::bigint[], %(t_consent)s::bigint[], %(t_loan)s::bigint[],
        %(t_key)s::int[]) AS b(k, lender_id, customer_id, challenge_id, consent_id, loan_id,
        key_version))"""

_H = "(hashint8(g.n + {salt}) & 2147483647)"

# One row per seeded loan: its lender slot k, the due date of its oldest unpaid
# installment (late: 1..MAX days before the business date; current: 0..29 days
# after it) and how many installments it has paid.
_PLAN = f"""(SELECT g.n, {{k}} AS k,
        CASE WHEN {_H.format(salt=0)} %% 1000 < {LATE_PER_MILLE}
             THEN %(bd)s::date - (1 + {_H.format(salt=7777777777)} %% {MAX_DAYS_LATE})::int
             ELSE %(bd)s::date + ({_H.format(salt=7777777777)} %% 30)::int END AS oldest,
        ({_H.format(salt=5555555555)} %% {INSTALLMENTS})::int AS paid
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g(n))"""  # noqa: S608


def seed_loans(*, templates: list[Template], loans: int, layout: str, business_date: date) -> None:
    """``loans`` active loans beyond the templates, their installments, customers, consents
    and enrolled phones, in chunks of SEED_CHUNK loans, one transaction each."""
    from django.db import connection, transaction

    from apps.collections.models import Installment, Loan
    from apps.customers.models import ConsentChallenge, ConsentRecord, Customer
    from apps.devices.models import Device, DeviceState

    tables = {
        m: m._meta.db_table
        for m in (Customer, ConsentChallenge, ConsentRecord, Loan, Installment, Device, DeviceState)
    }
    base = {m: scalar(f"SELECT COALESCE(max(id), 0) + 1 FROM {t}") for m, t in tables.items()}  # noqa: S608
    per_lender = -(-loans // len(templates))
    k = f"(g.n %% {len(templates)})" if layout == "interleaved" else f"(g.n / {per_lender})"
    plan = _PLAN.format(k=k)
    tpl = {
        "t_k": list(range(len(templates))),
        "t_lender": [t.lender_id for t in templates],
        "t_customer": [t.customer_id for t in templates],
        "t_challenge": [t.challenge_id for t in templates],
        "t_consent": [t.consent_id for t in templates],
        "t_loan": [t.loan_id for t in templates],
        "t_key": [t.key_version for t in templates],
    }
    ids = {m.__name__: f"{base[m]} + p.n" for m in tables}
    start = "(p.oldest - make_interval(months => p.paid + 1))::date"
    signed = f"({start} + time '10:00') AT TIME ZONE 'Africa/Nairobi'"
    due = "(p.oldest + make_interval(months => t.sequence - p.paid - 1))::date"
    paid = "t.sequence <= p.paid"
    customers = insert_select(
        Customer,
        copy=True,
        params={},
        source=f"{plan} AS p JOIN {_TPL} AS b ON b.k = p.k "
        "JOIN customers_customer AS t ON t.id = b.customer_id",
        values={
            "id": ids["Customer"],
            "full_name": "'Bench ' || p.n",
            "phone": "'+2547' || lpad((p.n %% 100000000)::text, 8, '0')",
            "national_id": "'BS' || p.n",
            "created_at": "now()",
            "updated_at": "now()",
        },
    )
    challenges = insert_select(
        ConsentChallenge,
        copy=True,
        params={},
        source=f"{plan} AS p JOIN {_TPL} AS b ON b.k = p.k "
        "JOIN customers_consentchallenge AS t ON t.id = b.challenge_id",
        values={
            "id": ids["ConsentChallenge"],
            "customer_id": ids["Customer"],
            "created_at": "now()",
            "updated_at": "now()",
        },
    )
    consents = insert_select(
        ConsentRecord,
        copy=True,
        params={},
        source=f"{plan} AS p JOIN {_TPL} AS b ON b.k = p.k "
        "JOIN customers_consentrecord AS t ON t.id = b.consent_id",
        values={
            "id": ids["ConsentRecord"],
            "customer_id": ids["Customer"],
            "challenge_id": ids["ConsentChallenge"],
            "created_at": "now()",
            "updated_at": "now()",
        },
    )
    loan_rows = insert_select(
        Loan,
        copy=True,
        params={},
        source=f"{plan} AS p JOIN {_TPL} AS b ON b.k = p.k "
        "JOIN collections_loan AS t ON t.id = b.loan_id",
        values={
            "id": ids["Loan"],
            "customer_id": ids["Customer"],
            "consent_id": ids["ConsentRecord"],
            "reference": "'BS-' || lpad(p.n::text, 9, '0')",
            "idempotency_key": "NULL",
            "status": "'active'",
            "start_date": start,
            "signed_at": signed,
            "created_at": signed,
            "updated_at": signed,
            "stage": "'none'",
            "stage_changed_at": "NULL",
            "paid_off_at": "NULL",
        },
    )
    installments = insert_select(
        Installment,
        copy=True,
        params={},
        source=f"{plan} AS p JOIN {_TPL} AS b ON b.k = p.k "
        "JOIN collections_installment AS t ON t.loan_id = b.loan_id",
        values={
            "id": f"{base[Installment]} + p.n * {INSTALLMENTS} + t.sequence - 1",
            "loan_id": ids["Loan"],
            "due_date": due,
            "principal_paid": f"CASE WHEN {paid} THEN t.principal_amount ELSE 0 END",
            "interest_paid": f"CASE WHEN {paid} THEN t.interest_amount ELSE 0 END",
            "fee_paid": f"CASE WHEN {paid} THEN t.fee_amount ELSE 0 END",
            "late_fee_amount": "0",
            "late_fee_paid": "0",
            "late_fee_assessed_at": "NULL",
            "paid_at": f"CASE WHEN {paid} THEN {due} + time '09:00' END",
            "created_at": signed,
            "updated_at": signed,
        },
    )
    device_params: dict[str, Any] = {}
    devices = insert_select(
        Device,
        copy=False,
        params=device_params,
        source=f"{plan} AS p JOIN {_TPL} AS b ON b.k = p.k",
        values={
            "id": ids["Device"],
            "lender_id": "b.lender_id",
            "loan_id": ids["Loan"],
            "imei": "'35' || lpad(p.n::text, 13, '0')",
            "brand": "'Bench'",
            "model_name": "'A1'",
            "status": "'enrolled'",
            "agent_version": "'1.0'",
            "android_version": "'14'",
            "fcm_token": "'bench' || p.n || ':APA91b' || repeat('x', 140)",
            "enrolled_at": "now()",
            "last_seen_at": "now()",
            "desired_version": "1",
            "acked_version": "1",
            "acked_at": "now()",
            "key_version": "b.key_version",
            "created_at": "now()",
            "updated_at": "now()",
        },
    )
    states = insert_select(
        DeviceState,
        copy=False,
        params={},
        source=f"{plan} AS p JOIN {_TPL} AS b ON b.k = p.k",
        values={
            "id": ids["DeviceState"],
            "lender_id": "b.lender_id",
            "device_id": ids["Device"],
            "version": "1",
            "level": "'normal'",
            "key_version": "b.key_version",
            "document": f"jsonb_build_object('device', {ids['Device']}, "
            "'version', 1, 'level', 'normal', 'locale', 'en', "
            "'fallback_level', 'normal', 'key_version', b.key_version)",
            "created_at": "now()",
            "updated_at": "now()",
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    for lo in range(0, loans, SEED_CHUNK):
        hi = min(lo + SEED_CHUNK, loans) - 1
        params = {**tpl, "lo": lo, "hi": hi, "bd": business_date}
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            for statement, extra in (
                (customers, {}),
                (challenges, {}),
                (consents, {}),
                (loan_rows, {}),
                (installments, {}),
                (devices, device_params),
                (states, {}),
            ):
                cursor.execute(statement, {**params, **extra})
        print(
            f"  seeded loans {lo:>9,} .. {hi:>9,}  ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    with connection.cursor() as cursor:
        for table in tables.values():
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("SET synchronous_commit = on")


def vacuum(table: str | None = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {table or ''}")
        with contextlib.suppress(Exception):  # needs pg_checkpoint; harmless without it
            cursor.execute("CHECKPOINT")


# --- (a) the floor ------------------------------------------------------------------------


def floor_statement() -> Any:
    """The floor: the product's classification (``apps.collections.sql.classify``, the one the
    sweep's statements are composed from) of every active loan of every lender in one
    statement, and the raise where the stage must rise (``STAGE_RISES``), nothing else."""
    from psycopg import sql as pg

    from apps.collections import sql
    from apps.collections.models import Loan

    return pg.SQL(
        """WITH {classify}
UPDATE {loans} AS l
SET stage = c.target, stage_changed_at = %(now)s, updated_at = %(now)s
FROM classified AS c
WHERE l.id = c.id AND {rises}"""
    ).format(
        classify=sql.classify(where=pg.SQL("l.stage <> 'lock'"), pauses=pg.SQL("true")),
        loans=pg.Identifier(Loan._meta.db_table),
        rises=sql.STAGE_RISES,
    )


def floor(business_date: date) -> tuple[float, int]:
    """The floor statement's seconds and rows, in a transaction rolled back after it."""
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.collections.ladder import Ladder
    from apps.collections.models import STAGE_ORDER
    from apps.lenders.models import Lender

    lenders = list(Lender.objects.order_by("pk"))
    (tz,) = {lender.timezone for lender in lenders}  # the bench's lenders share one
    ladders = [Ladder.load(lender=lender).sql_params() for lender in lenders]
    params = {
        "bd": business_date,
        "now": timezone.now(),
        "order": list(STAGE_ORDER),
        "noticed_before": timezone.now(),
        "tz": tz,
        **{
            key: [v for ladder in ladders for v in ladder[key]] for key in ("pv", "days", "actions")
        },
    }
    statement = floor_statement()
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(statement, params)
        seconds = time.perf_counter() - started
        rows = cursor.rowcount
        transaction.set_rollback(True)
    return seconds, rows


# --- (b) the sweep ------------------------------------------------------------------------


class Profile:
    """Seconds and calls by part of the sweep: statements through an execute wrapper, a few
    service functions through timing wrappers set on their modules, commits."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, part: str, seconds: float) -> None:
        self.seconds[part] += seconds
        self.calls[part] += 1

    def merge(self, other: dict[str, Any]) -> None:
        for part, seconds in other["seconds"].items():
            self.seconds[part] += seconds
        for part, calls in other["calls"].items():
            self.calls[part] += calls

    def dump(self) -> dict[str, Any]:
        return {"seconds": dict(self.seconds), "calls": dict(self.calls)}

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


PROFILE = Profile()


def _statement_part(statement: Any) -> str:
    from apps.collections import sql
    from apps.devices import sql as device_sql

    if statement in (sql.RAISE_RANGE, sql.SWEEP_AGAIN):
        return "sql:classify"
    if statement in (
        device_sql.DEVICE_STATES_WRITE,
        device_sql.PUSH_NUDGES_ENQUEUE,
        device_sql.DEVICES_LOCK,
    ):
        return "sql:states"  # the states, their push outbox rows, the devices' locks
    if statement == sql.STAGE_HISTORY_INSERT:
        return "sql:history"
    if isinstance(statement, str) and "audit_auditchain" in statement:
        return "sql:audit"
    return "sql:other"


def _timed_execute(
    execute: Callable[..., Any], statement: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    started = time.perf_counter()
    try:
        return execute(statement, params, many, context)
    finally:
        PROFILE.add(_statement_part(statement), time.perf_counter() - started)


def _timed(part: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            PROFILE.add(part, time.perf_counter() - started)

    return timed


@contextlib.contextmanager
def profiled() -> Iterator[None]:
    """Install the timers (before any worker process forks, so that workers inherit them)."""
    from django.db import connections

    from apps.collections.services import stages
    from apps.collections.services import sweep as sweep_service
    from apps.devices.services import state_writer

    connection = connections["default"]
    wrapped = [
        (stages, "audit_events_record_select", "fn:audit stage events"),
        (sweep_service, "audit_events_record", "fn:audit stage events"),
        (state_writer, "audit_events_record_select", "fn:audit device events"),
        (stages, "device_ids_enrolled_for_loans", "fn:lookups"),
        (stages, "customer_locales", "fn:lookups"),
        (stages, "device_states_write_shown", "fn:device states write"),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in wrapped]
    for module, name, part in wrapped:
        setattr(module, name, _timed(part, getattr(module, name)))
    commit = type(connection)._commit

    def timed_commit(self: Any) -> Any:
        started = time.perf_counter()
        try:
            return commit(self)
        finally:
            PROFILE.add("commit", time.perf_counter() - started)

    type(connection)._commit = timed_commit
    connection.execute_wrappers.append(_timed_execute)
    try:
        yield
    finally:
        connection.execute_wrappers.remove(_timed_execute)
        type(connection)._commit = commit
        for module, name, original in originals:
            setattr(module, name, original)


@dataclass
class SweepRun:
    seconds: float
    changes: int
    phones: int
    ranges: int
    profile: Profile = field(default_factory=Profile)
    worker_rss_mib: float = 0.0


def _sweep_ranges(
    work: list[tuple[int, int, int]], business_date: date
) -> tuple[int, int, dict[str, Any]]:
    from apps.collections.services import loan_stage_sweep

    PROFILE.reset()
    changes = phones = 0
    for lender_id, id_from, id_to in work:
        report = loan_stage_sweep(
            lender_id=lender_id, business_date=business_date, id_from=id_from, id_to=id_to
        )
        changes += report.changes
        phones += report.phones
    return changes, phones, PROFILE.dump()


def sweep(*, lender_ids: list[int], business_date: date, size: int, workers: int) -> SweepRun:
    """Every range of every lender, as the lender task fans them out; serially, or spread
    over ``workers`` processes (each range one task, as the Celery range tasks run)."""
    from django.db import connections

    from apps.collections.services import loan_sweep_ranges

    started = time.perf_counter()
    per_lender = [
        [(lender_id, lo, hi) for lo, hi in loan_sweep_ranges(lender_id=lender_id, size=size)]
        for lender_id in lender_ids
    ]
    # lender after lender within each round, as the lender tasks' fan-outs overlap in the queue
    work = [r for ranges in zip_longest(*per_lender) for r in ranges if r is not None]
    run = SweepRun(seconds=0.0, changes=0, phones=0, ranges=len(work))
    if workers <= 1:
        step = max(1, len(work) // 10)
        for start in range(0, len(work), step):
            changes, phones, profile = _sweep_ranges(work[start : start + step], business_date)
            run.changes += changes
            run.phones += phones
            run.profile.merge(profile)
            print(
                f"    {min(start + step, len(work)):>6,} of {len(work):,} ranges, "
                f"{run.changes:,} changes, {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    else:
        connections.close_all()  # each worker opens its own connection
        batches = [work[i : i + 1] for i in range(len(work))]
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            for changes, phones, profile in pool.map(
                _sweep_ranges, batches, [business_date] * len(batches), chunksize=8
            ):
                run.changes += changes
                run.phones += phones
                run.profile.merge(profile)
        run.worker_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    run.seconds = time.perf_counter() - started
    return run


# --- counts and report --------------------------------------------------------------------

COUNTS = {
    "stage changes": "SELECT count(*) FROM collections_loanstagechange WHERE cause = 'sweep'",
    "desired states": "SELECT count(*) FROM devices_devicestate WHERE version > 1",
    "push nudges": "SELECT count(*) FROM devices_pushnudge",
    "audit events": "SELECT count(*) FROM audit_auditevent",
    "notifications": "SELECT count(*) FROM notifications_notification",
}


def notices(*, lender_ids: list[int], business_date: date, size: int) -> tuple[float, int]:
    """(c): the overdue notices of every range, as the tasks the sweep enqueued would."""
    from apps.collections.services import loan_sweep_ranges, overdue_notices_queue

    started, queued = time.perf_counter(), 0
    for lender_id in lender_ids:
        for lo, hi in loan_sweep_ranges(lender_id=lender_id, size=size):
            queued += overdue_notices_queue(
                lender_id=lender_id, business_date=business_date, id_from=lo, id_to=hi
            )
    return time.perf_counter() - started, queued


def counts() -> dict[str, int]:
    return {name: scalar(statement) for name, statement in COUNTS.items()}


def purge_broker() -> int:
    from config.celery import app

    with contextlib.suppress(Exception):
        return app.control.purge() or 0
    return 0


def breakdown(run: SweepRun) -> list[tuple[str, float, int]]:
    """(part, seconds, calls) of one sweep, parts disjoint, summing to its wall time."""
    s, c = run.profile.seconds, run.profile.calls
    audit_fn = s["fn:audit stage events"] + s["fn:audit device events"]
    states_python = s["fn:device states write"] - s["sql:states"] - s["fn:audit device events"]
    parts = [
        ("classify the range and raise (SQL)", s["sql:classify"], c["sql:classify"]),
        ("desired states, push outbox, device locks (SQL)", s["sql:states"], c["sql:states"]),
        ("history rows (SQL)", s["sql:history"], c["sql:history"]),
        ("audit events, SQL (built and hashed there)", s["sql:audit"], c["sql:audit"]),
        (
            "audit events, Python",
            audit_fn - s["sql:audit"],
            c["fn:audit stage events"] + c["fn:audit device events"],
        ),
        ("device/locale lookups", s["fn:lookups"], c["fn:lookups"]),
        ("states write, Python and small lookups", states_python, c["fn:device states write"]),
        ("commit", s["commit"], c["commit"]),
    ]
    other_sql = s["sql:other"] - s["fn:lookups"]  # the lookups are single statements
    parts.append(("other SQL (lender, lock, pauses, ladder, ...)", other_sql, c["sql:other"]))
    parts.append(
        ("other Python (ladder, state changes, ...)", run.seconds - sum(p[1] for p in parts), 0)
    )
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--lenders", type=int, default=LENDERS)
    parser.add_argument(
        "--range-size",
        type=int,
        default=None,
        help="ids per range task (default: settings.SWEEP_RANGE_SIZE)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also sweep with the ranges spread over this many processes",
    )
    parser.add_argument("--layout", choices=("interleaved", "blocks"), default="interleaved")
    args = parser.parse_args()
    if args.loans < args.lenders:
        raise SystemExit("--loans must be at least --lenders")

    os.environ["CELERY_BROKER_URL"] = BROKER_URL
    drop_database(DATABASE)
    django_on_bench_database(DATABASE)
    from django.conf import settings
    from django.db import connection

    from apps.collections.services import lender_business_date
    from config.celery import app

    app.conf.task_always_eager = False  # the relay is enqueued after each commit, not run
    size = args.range_size or settings.SWEEP_RANGE_SIZE

    started = time.perf_counter()
    templates = seed_templates(args.lenders)
    business_date = lender_business_date(lender_id=templates[0].lender_id)
    seed_loans(
        templates=templates, loans=args.loans, layout=args.layout, business_date=business_date
    )
    # The templates are paid off: out of the sweep, and out of the id spans of the ranges.
    sql(
        "UPDATE collections_loan SET status = 'paid_off', paid_off_at = now() WHERE id = ANY(%s)",
        [[t.loan_id for t in templates]],
    )
    vacuum()
    seed_seconds = time.perf_counter() - started
    loans = scalar("SELECT count(*) FROM collections_loan WHERE status = 'active'")
    installments = scalar(
        "SELECT count(*) FROM collections_installment AS i JOIN collections_loan AS l"
        " ON l.id = i.loan_id WHERE l.status = 'active'"
    )
    size_gib = scalar("SELECT pg_database_size(current_database())") / 2**30
    print(f"  seeded in {seed_seconds:.0f} s; database {size_gib:.1f} GiB", flush=True)

    clone = f"{DATABASE}_workers"
    clone_seconds = clone_database(DATABASE, clone) if args.workers > 1 else 0.0
    lender_ids = [t.lender_id for t in templates]

    floor_fresh, floor_rows = floor(business_date)
    vacuum("collections_loan")
    floor_seconds, floor_rows_again = floor(business_date)
    vacuum("collections_loan")
    before = counts()
    with profiled():
        first = sweep(lender_ids=lender_ids, business_date=business_date, size=size, workers=1)
        after_first = counts()
        second = sweep(lender_ids=lender_ids, business_date=business_date, size=size, workers=1)
    after_second = counts()
    notices_seconds, notices_queued = notices(
        lender_ids=lender_ids, business_date=business_date, size=size
    )
    floor_idle, floor_idle_rows = floor(business_date)
    written = {name: after_first[name] - before[name] for name in COUNTS}
    written_again = {name: after_second[name] - after_first[name] for name in COUNTS}

    parallel: list[SweepRun] = []
    if args.workers > 1:
        use_database(clone)
        vacuum("collections_loan")
        with profiled():
            parallel.append(
                sweep(
                    lender_ids=lender_ids,
                    business_date=business_date,
                    size=size,
                    workers=args.workers,
                )
            )
            parallel.append(
                sweep(
                    lender_ids=lender_ids,
                    business_date=business_date,
                    size=size,
                    workers=args.workers,
                )
            )
        use_database(DATABASE)
        drop_database(clone)
    purged = purge_broker()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('shared_buffers')"
        )
        version, buffers = cursor.fetchone()
    per_range = loans / first.ranges if first.ranges else 0
    print(
        f"bench-sweep: {loans:,} active loans ({installments:,} installments), "
        f"{args.lenders} lenders, ids {args.layout}; PostgreSQL {version} "
        f"(shared_buffers {buffers}), {os.cpu_count()} cores"
    )
    print(
        f"  seed         {seed_seconds:8.1f} s (not timed below)"
        + (f"; copy for the workers {clone_seconds:.1f} s" if clone_seconds else "")
    )
    print(
        f"  ranges       {first.ranges:,} of {size:,} ids ({per_range:,.0f} active loans each "
        f"on average), business date {business_date.isoformat()}"
    )
    print("                                           seconds   x floor      changes")
    rows = [
        ("(a) floor, one statement", floor_seconds, floor_rows_again),
        ("    same, first run (cold)", floor_fresh, floor_rows),
        ("(b) sweep, serial", first.seconds, first.changes),
        ("    second sweep, nothing to change", second.seconds, second.changes),
        ("    floor, nothing to change", floor_idle, floor_idle_rows),
        ("(c) overdue notices, after the sweep", notices_seconds, notices_queued),
    ]
    for run, label in zip(parallel, ("(b) sweep", "    second sweep"), strict=False):
        rows.append((f"{label}, {args.workers} processes", run.seconds, run.changes))
    for label, seconds, changed in rows:
        print(f"  {label:<38} {seconds:8.2f} {seconds / floor_seconds:8.2f}x {changed:>12,}")
    print("  written by the first sweep: " + ", ".join(f"{n} {v:,}" for n, v in written.items()))
    print(
        "  written by the second:      " + ", ".join(f"{n} {v:,}" for n, v in written_again.items())
    )
    print(
        f"  phones given a state: {first.phones:,}; push relay tasks enqueued (every sweep of the run) and purged: {purged:,}"
    )
    print("  where the first sweep's time goes (serial):")
    for label, seconds, calls in breakdown(first):
        share = seconds / first.seconds if first.seconds else 0
        print(f"    {label:<46} {seconds:8.2f} s {share:6.1%}  {calls:>9,} calls")
    print("  where the second sweep's time goes (serial):")
    for label, seconds, calls in breakdown(second):
        if seconds >= 0.005 * second.seconds:
            print(
                f"    {label:<46} {seconds:8.2f} s {seconds / second.seconds:6.1%}  {calls:>9,} calls"
            )
    ratio, ratio_second = first.seconds / floor_seconds, second.seconds / floor_seconds
    matches = first.changes == floor_rows_again == written["stage changes"]
    print(
        f"  checks: sweep changes = floor rows = history rows: {'yes' if matches else 'NO'}; "
        f"second sweep changed {second.changes}"
    )
    print(
        f"  targets (at 1M loans): sweep/floor {ratio:.2f} <= {RATIO_TARGET:.0f}: "
        f"{'met' if ratio <= RATIO_TARGET else 'NOT met'}; second/floor {ratio_second:.2f} <= "
        f"{SECOND_TARGET:.0f}: {'met' if ratio_second <= SECOND_TARGET else 'NOT met'}"
    )
    workers_rss = max((run.worker_rss_mib for run in parallel), default=0.0)
    print(
        f"  peak memory  bench process {peak_rss_mib():.0f} MiB"
        + (f", largest worker process {workers_rss:.0f} MiB" if parallel else "")
    )
    if not matches or second.changes:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
