"""The login form answers a customer's number and a stranger's number alike: the same SQL on
the request's connection (make test) and the same time (make bench-login prints the medians),
so nobody learns who borrows here by timing it.

Tasks are not eager here (as in production): what the request publishes goes to Redis and
is purged afterwards; no worker runs, so its work is not timed with the request's."""

import os
import re
import statistics
import time
from datetime import timedelta
from uuid import uuid4

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.customers.models import CustomerLoginCode
from config.celery import app
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = int(os.environ.get("LOGIN_TIMING_REQUESTS", "200"))  # of each kind


@pytest.fixture
def published_not_run(settings):
    """Tasks go to the broker as in production; nothing runs them; the queues are purged."""

    def purge() -> None:
        with app.connection_for_write() as conn:
            for queue in settings.TASK_QUEUE_NAMES:
                conn.default_channel.queue_purge(queue)

    app.conf.task_always_eager = False
    purge()
    try:
        yield
    finally:
        purge()
        app.conf.task_always_eager = True


def _shape(sql: str) -> str:
    """The statement without its values (numbers, quoted strings)."""
    return re.sub(r"'(?:[^']|'')*'|\b\d+\b", "?", sql)


def _ask(client, lender, phone: str, n: int):
    return client.post(
        reverse("customers:login", kwargs={"lender_slug": lender.slug}),
        {"phone": phone},
        REMOTE_ADDR=f"10.{n // 250}.{n % 250}.1",
    )


def test_a_customers_number_and_a_strangers_run_the_same_sql_when_a_code_is_asked(
    lender_a, published_not_run
) -> None:
    customer = CustomerFactory(lender=lender_a)
    with CaptureQueriesContext(connection) as known:
        registered = _ask(Client(), lender_a, customer.phone, 1)
    with CaptureQueriesContext(connection) as unknown:
        stranger = _ask(Client(), lender_a, "+254799000001", 2)
    assert (registered.status_code, registered.url) == (stranger.status_code, stranger.url)
    assert [_shape(q["sql"]) for q in known] == [_shape(q["sql"]) for q in unknown]


def _try_code(client, lender, code: str, n: int):
    return client.post(
        reverse("customers:code", kwargs={"lender_slug": lender.slug}),
        {"code": code},
        REMOTE_ADDR=f"10.{n // 250}.{n % 250}.2",
    )


def _live_code(customer) -> None:
    """A login code waiting for ``customer`` (made as the task would, after the answer)."""
    from apps.core.actor import Actor
    from apps.customers.services import customer_login_code_send

    customer_login_code_send(
        customer_id=customer.pk, request_key=str(uuid4()), actor=Actor.system()
    )


def test_a_customers_number_and_a_strangers_run_the_same_sql_when_a_wrong_code_is_typed(
    lender_a, published_not_run, sms_outbox
) -> None:
    customer = CustomerFactory(lender=lender_a)
    registered, stranger = Client(), Client()
    _ask(registered, lender_a, customer.phone, 1)
    _live_code(customer)
    wrong = "000000" if "000000" not in sms_outbox[-1][1] else "000001"
    _ask(stranger, lender_a, "+254799000001", 2)
    with CaptureQueriesContext(connection) as known:
        mine = _try_code(registered, lender_a, wrong, 1)
    with CaptureQueriesContext(connection) as unknown:
        theirs = _try_code(stranger, lender_a, wrong, 2)
    assert mine.status_code == theirs.status_code == 200
    assert b"That code is not right." in mine.content
    assert b"That code is not right." in theirs.content
    assert [_shape(q["sql"]) for q in known] == [_shape(q["sql"]) for q in unknown]


def _on_code_page(phone: str) -> Client:
    """A browser that asked for a code for ``phone`` (its session holds the number)."""
    from apps.selfservice.views import PHONE_KEY

    client = Client()
    session = client.session
    session[PHONE_KEY] = phone
    session.save()
    return client


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


@pytest.mark.bench  # make bench-login
def test_a_customers_number_and_a_strangers_are_answered_in_the_same_time(
    client, lender_a, published_not_run, capsys
) -> None:
    """Medians of ``REQUESTS`` asks of each kind, interleaved so that the machine's load
    weighs on both alike; every customer asks once (each gets a code sent)."""
    customers = [CustomerFactory(lender=lender_a) for _ in range(REQUESTS)]
    for n in range(5):  # warm up: templates, translations, connections
        _ask(client, lender_a, f"+25479800{n:04d}", 1000 + n)
    known, unknown = [], []
    for n, customer in enumerate(customers):
        for phone, samples in ((customer.phone, known), (f"+25479900{n:04d}", unknown)):
            started = time.perf_counter()
            answer = _ask(client, lender_a, phone, 2 * n + len(samples))
            samples.append(time.perf_counter() - started)
            assert answer.status_code == 302
    registered, stranger = _median_ms(known), _median_ms(unknown)
    with capsys.disabled():
        print(  # noqa: T201  (the figures are the point of this test)
            f"\nlogin code asked, median of {REQUESTS} each: registered {registered:.2f} ms, "
            f"unknown {stranger:.2f} ms, difference {registered - stranger:+.2f} ms"
        )
    assert abs(registered - stranger) < max(1.5, 0.10 * stranger)


@pytest.mark.bench  # make bench-login
def test_a_wrong_code_for_a_customers_number_and_a_strangers_is_answered_in_the_same_time(
    lender_a, published_not_run, capsys
) -> None:
    """Medians of ``REQUESTS`` wrong codes of each kind, interleaved; each customer has a
    code waiting (the case a stranger probing a number just asked for creates)."""
    customers = [CustomerFactory(lender=lender_a) for _ in range(REQUESTS)]
    CustomerLoginCode.objects.bulk_create(
        CustomerLoginCode(
            lender=lender_a,
            customer=customer,
            code_hash="f" * 64,
            expires_at=timezone.now() + timedelta(minutes=10),
        )
        for customer in customers
    )
    pairs = [
        (_on_code_page(customer.phone), _on_code_page(f"+25479900{n:04d}"))
        for n, customer in enumerate(customers)
    ]
    for n in range(5):  # warm up
        _try_code(pairs[n][1], lender_a, "999999", 100_000 + n)
    known, unknown = [], []
    for n, (registered, stranger) in enumerate(pairs):
        for client, samples in ((registered, known), (stranger, unknown)):
            started = time.perf_counter()
            answer = _try_code(client, lender_a, "999999", 4 * n + 2 + len(samples) % 2)
            samples.append(time.perf_counter() - started)
            assert answer.status_code == 200
    registered, stranger = _median_ms(known), _median_ms(unknown)
    with capsys.disabled():
        print(  # noqa: T201  (the figures are the point of this test)
            f"\nwrong login code, median of {REQUESTS} each: registered {registered:.2f} ms, "
            f"unknown {stranger:.2f} ms, difference {registered - stranger:+.2f} ms"
        )
    assert abs(registered - stranger) < max(1.5, 0.10 * stranger)


@pytest.mark.broker
def test_the_code_asked_for_arrives_by_sms_from_a_worker_and_logs_the_customer_in(
    client, lender_a, redis_worker, sms_outbox
) -> None:
    """Through the outbox and Redis to a real worker, as in production."""
    from tests.waiting import wait_for

    customer = CustomerFactory(lender=lender_a)
    assert _ask(client, lender_a, customer.phone, 1).status_code == 302
    wait_for(lambda: len(sms_outbox) == 1)
    code = re.search(r"\b(\d{6})\b", sms_outbox[0][1]).group(1)
    answer = _try_code(client, lender_a, code, 1)
    assert answer.status_code == 302
    assert answer.url == reverse("customers:home", kwargs={"lender_slug": lender_a.slug})
