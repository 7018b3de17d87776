"""bench-payments: signed provider webhooks against a real server on PostgreSQL.

Seeds a lender with loans in a dedicated database, starts gunicorn with
``--workers`` processes on loopback, then posts N distinct signed payment
events from ``--concurrency`` keep-alive connections. Prints throughput
(total and per worker), p50/p95/p99 latency, errors, the payments stored
(must equal the events sent), and peak memory of the load generator and of
the server's workers.

    make bench-payments            # N=5000
    make bench-payments N=20000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib, percentile


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(loans: int) -> tuple[str, list[str]]:
    from django.db import transaction

    from apps.collections.models import Loan
    from apps.collections.services import loan_sign
    from apps.core.actor import Actor
    from apps.core.money import Money
    from apps.customers.services import consent_record_demo_seed, customer_get_or_create
    from apps.lenders.models import Lender, LoanProduct
    from apps.lenders.services import (
        default_stages,
        lender_create,
        loan_product_save,
        restriction_policy_create,
    )
    from apps.retailers.services import demo_counter

    lender = Lender.objects.filter(slug="bench-payments").first()
    actor = Actor.system()
    if lender is None:
        with transaction.atomic():
            lender = lender_create(name="Bench", slug="bench-payments", country="KE", currency="KES",
                                   timezone="Africa/Nairobi", locale="en", actor=actor)  # fmt: skip
            restriction_policy_create(lender=lender, name="Standard", stages=default_stages("en", country="KE"),
                                      actor=actor)  # fmt: skip
            loan_product_save(product=LoanProduct(lender=lender, name="12m", installments=12, frequency="monthly",
                                                  interest_rate_percent=Decimal(3)), actor=actor)  # fmt: skip
    product = LoanProduct.objects.get(lender=lender)
    shop, clerk = demo_counter(lender)
    existing = Loan.objects.filter(lender=lender).count()
    for n in range(existing, loans):
        with transaction.atomic():
            customer, _ = customer_get_or_create(lender=lender, full_name=f"Bench {n}", phone=f"07{n % 10**8:08d}",
                                                 national_id=f"B{n}", actor=actor)  # fmt: skip
            consent = consent_record_demo_seed(customer=customer, text="Benchmark terms", text_version="bench",
                                               clerk_id=clerk.user_id, shop_id=shop.pk, actor=actor)  # fmt: skip
            loan_sign(customer=customer, consent=consent, product=product, device_price=Money(Decimal(10**6), "KES"),
                      down_payment=Money(Decimal(1000), "KES"), actor=actor)  # fmt: skip
    return lender.slug, list(
        Loan.objects.filter(lender=lender).values_list("reference", flat=True)[:loans]
    )


def start_server(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--worker-class", "sync", "--keep-alive", "30",
               "--log-level", "warning", "--timeout", "60"]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def worker_rss_mib(server: subprocess.Popen[bytes]) -> float:
    import psutil

    parent = psutil.Process(server.pid)
    return max((p.memory_info().rss for p in [parent, *parent.children()]), default=0) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    os.environ["PAYMENTS_WEBHOOK_THROTTLE"] = "100000000/min"  # measure the path, not the throttle
    django_on_bench_database()
    from apps.collections.models import Payment
    from apps.integrations.payments.signing import sign, webhook_secret_for

    slug, references = seed(args.loans)
    secret = webhook_secret_for(lender_slug=slug, provider="demo")
    run_id = f"{time.time_ns():x}"
    before = Payment.objects.filter(lender__slug=slug).count()

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DJANGO_LOG_LEVEL="WARNING"
    )
    port = free_port()
    server = start_server(port, args.workers, env)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = args.events // args.concurrency

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, bad = [], []
        for i in range(per_client):
            n = c * per_client + i
            body = json.dumps({"id": f"evt-{run_id}-{n}", "type": "payment.succeeded",
                               "data": {"loan": references[n % len(references)], "amount": "150.00",
                                        "currency": "KES", "reference": f"MP-{run_id}-{n}"}}).encode()  # fmt: skip
            headers = {"Content-Type": "application/json", "X-Lender": slug,
                       "X-Signature": sign(secret=secret, body=body)}  # fmt: skip
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/payments/v1/webhooks/demo/", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                bad.append(repr(exc))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append((time.perf_counter() - t0) * 1000)
            if response.status != 200:
                bad.append(f"{response.status} {payload[:200]!r}")
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    try:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.concurrency)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        server_rss = worker_rss_mib(server)
    finally:
        server.terminate()
        server.wait(timeout=20)

    sent = per_client * args.concurrency
    stored = Payment.objects.filter(lender__slug=slug).count() - before
    latencies.sort()
    print(f"bench-payments: {sent} signed webhooks, {args.concurrency} connections, "
          f"gunicorn {args.workers} sync workers, PostgreSQL, one lender ({len(references)} loans)")  # fmt: skip
    print(
        f"  throughput   {sent / elapsed:8.1f} webhooks/s  ({sent / elapsed / args.workers:.1f} per worker)"
    )
    print(f"  latency      p50 {percentile(latencies, 50):.1f} ms  p95 {percentile(latencies, 95):.1f} ms  "
          f"p99 {percentile(latencies, 99):.1f} ms  max {latencies[-1]:.1f} ms")  # fmt: skip
    print(f"  errors       {len(errors)}" + (f"  first: {errors[0]}" if errors else ""))
    print(f"  payments     {stored} stored for {sent} distinct events")
    print(
        f"  peak memory  load generator {peak_rss_mib():.0f} MiB, largest server process {server_rss:.0f} MiB"
    )
    if errors or stored != sent:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
