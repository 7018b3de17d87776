"""Drill 8: a mixed loopback load, bounded in time and in requests: agent check-ins (most of
it), signed payment webhooks (half of them paying an installment, half the provider's
redeliveries), POS sales through the real forms to the QR code, and logged-in customers on
their pages. gunicorn (2 sync workers) and a Celery worker run on the test database, as in
production; every answer must be the expected one, with the throttles as in production.

The load is tools/bench/load.py's (``make bench-load`` runs it at length on a database of its
own); here 10 s or 1,000 requests, whichever comes first, and 60 s or 20,000 in ``make drills``."""

import os

import pytest

from tests.drills.conftest import FULL, scale
from tools.bench._server import database_url
from tools.bench._setup import percentile
from tools.bench.load import product_running, report_lines, run, seed

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]

SECONDS = scale(10, 60)
REQUESTS = scale(1000, 20_000)
CLIENTS = scale(4, 8)  # each with a sale or two in progress (a sale is 16 requests) when small
WORKERS = 2  # with the pytest process and the Celery worker: 4 PostgreSQL connections


def test_a_mixed_load_gets_only_expected_answers(report) -> None:
    plan = seed(phones=scale(200, 2000), loans=scale(40, 300), clients=CLIENTS, requests=REQUESTS)
    env = {**os.environ, "DATABASE_URL": database_url()}
    with product_running(env=env, workers=WORKERS) as product:
        try:
            figures = run(
                plan=plan, product=product, seconds=SECONDS, requests=REQUESTS, clients=CLIENTS
            )
        except BaseException:
            print(product.tail())  # noqa: T201  (the processes' own account, on failure)
            raise
    command = (
        "DRILL_SCALE=full " if FULL else ""
    ) + ".venv/bin/pytest tests/drills/test_load_drill.py"
    lines = report_lines(
        figures,
        command=command,
        seconds=SECONDS,
        requests=REQUESTS,
        clients=CLIENTS,
        workers=WORKERS,
    )
    p99 = {
        label: percentile(sorted(values), 99) for label, values in figures.results.latencies.items()
    }
    pos = max((v, k) for k, v in p99.items() if "/pos/" in k)
    customer = max((v, k) for k, v in p99.items() if "/my/" in k)
    report(
        f"load: {figures.sent} requests in {figures.elapsed:.1f} s ({figures.sent / figures.elapsed:.0f}/s), "
        f"{figures.errors} errors; p99 check-in {p99['POST /api/agent/v1/check-in']:.0f} ms, "
        f"webhook {p99['POST /api/payments/v1/webhooks/demo/']:.0f} ms, slowest POS page {pos[0]:.0f} ms "
        f"({pos[1]}), slowest customer page {customer[0]:.0f} ms ({customer[1]}); "
        f"{figures.results.enrollments} sales to the QR code, {figures.payments_stored} installments paid\n"
        + "\n".join(lines)
    )
    assert figures.results.enrollments > 0, "no sale reached the QR code"
    assert figures.results.paying_events > 0, "no webhook paid an installment"
    assert figures.errors == 0, "\n".join(lines)
