"""bench-payments: signed provider webhooks against a real server on PostgreSQL.

Seeds a lender with loans in a dedicated database, starts gunicorn with
``--workers`` processes (``--threads`` each; more than one thread means the
gthread worker) on loopback, then posts N distinct signed payment events
from ``--concurrency`` keep-alive connections. Prints throughput, p50/p95/p99
latency, errors, the payments stored (must equal the events sent), peak
memory, and where the CPU went.

Throughput is printed three ways:

* total webhooks/s, and that divided by the number of workers ("per
  worker"), the figure this benchmark has always printed;
* "per app core": webhooks/s divided by the CPU cores the app server
  actually consumed (CPU seconds of the gunicorn master and workers over the
  run's wall time). The load generator and PostgreSQL run on the same
  machine and take cores from the workers, so "per worker" understates what
  one app core can do when the machine is saturated, and overstates it when
  a worker sits idle. CPU actually used is the honest denominator. The
  PostgreSQL backends serving the run and the load generator are reported
  too, in CPU milliseconds per webhook, so the sum can be compared with the
  machine's cores.

Every event is signed (HMAC over timestamp and body, as the provider does).
The requests are built and signed before the clock starts, so that the load
generator, which shares the machine, spends its CPU sending rather than
encoding; a run must stay within the signature's tolerance (300 s by
default), which N=20000 does with a wide margin.

The server uses persistent database connections (``DJANGO_CONN_MAX_AGE``,
default 60 s, production's default in config/settings/base.py); the test
settings default to 0 so that pytest closes connections, which would make
every webhook pay for a new PostgreSQL backend and a SCRAM handshake.

    make bench-payments            # N=5000
    make bench-payments N=20000
"""

from __future__ import annotations

import argparse
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


def start_server(
    port: int, workers: int, threads: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    worker_class = ["--worker-class", "sync"] if threads == 1 else ["--threads", str(threads)]
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), *worker_class, "--keep-alive", "30",
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


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user + system CPU seconds of each live process in ``pids``."""
    import psutil

    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def server_pids(server: subprocess.Popen[bytes]) -> list[int]:
    import psutil

    return [server.pid, *(p.pid for p in psutil.Process(server.pid).children(recursive=True))]


def database_backend_pids() -> list[int]:
    """PostgreSQL backends connected to this database, except our own connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def signed_requests(
    *, events: int, slug: str, secret: str, references: list[str], run_id: str, port: int
) -> list[bytes]:
    """Every event as the raw HTTP/1.1 request a provider would send, each signed."""
    from apps.integrations.payments.signing import sign

    requests = []
    for n in range(events):
        body = json.dumps({"id": f"evt-{run_id}-{n}", "type": "payment.succeeded",
                           "data": {"loan": references[n % len(references)], "amount": "150.00",
                                    "currency": "KES", "reference": f"MP-{run_id}-{n}"}}).encode()  # fmt: skip
        head = (
            f"POST /api/payments/v1/webhooks/demo/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Lender: {slug}\r\nX-Signature: {sign(secret=secret, body=body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def read_response(sock: socket.socket, buffer: bytes) -> tuple[int, bytes, bytes, bool]:
    """One HTTP/1.1 response with a Content-Length: (status, body, bytes left over, keep-alive).

    gunicorn's sync worker answers ``Connection: close``; then the client reconnects,
    as http.client does.
    """
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, keep_alive = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    return status, rest[:length], rest[length:], keep_alive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    os.environ["PAYMENTS_WEBHOOK_THROTTLE"] = "100000000/min"  # measure the path, not the throttle
    django_on_bench_database()
    from apps.collections.models import Payment
    from apps.integrations.payments.signing import webhook_secret_for

    slug, references = seed(args.loans)
    secret = webhook_secret_for(lender_slug=slug, provider="demo")
    run_id = f"{time.time_ns():x}"
    before = Payment.objects.filter(lender__slug=slug).count()

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DJANGO_LOG_LEVEL="WARNING"
    )
    env.setdefault("DJANGO_CONN_MAX_AGE", "60")  # production's default; see the docstring
    port = free_port()
    per_client = args.events // args.concurrency
    requests = signed_requests(
        events=per_client * args.concurrency, slug=slug, secret=secret,
        references=references, run_id=run_id, port=port,
    )  # fmt: skip
    server = start_server(port, args.workers, args.threads, env)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def connect() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def client(c: int) -> None:
        sock = connect()
        mine, bad, buffer = [], [], b""
        for request in requests[c * per_client : (c + 1) * per_client]:
            t0 = time.perf_counter()
            try:
                sock.sendall(request)
                status, payload, buffer, keep_alive = read_response(sock, buffer)
                if not keep_alive:
                    sock.close()
                    sock, buffer = connect(), b""
            except OSError as exc:
                bad.append(repr(exc))
                sock.close()
                sock, buffer = connect(), b""
                continue
            mine.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                bad.append(f"{status} {payload[:200]!r}")
        sock.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    import psutil

    app_pids = server_pids(server)
    app_before = cpu_seconds(app_pids)
    machine_before = psutil.cpu_times()
    try:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.concurrency)]
        started, own_cpu = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed, own_cpu = time.perf_counter() - started, time.process_time() - own_cpu
        app_cpu = sum(cpu_seconds(app_pids).values()) - sum(app_before.values())
        # Backends of the run's persistent connections; with DJANGO_CONN_MAX_AGE=0
        # each request's backend is gone by now and this figure reads low.
        db_cpu = sum(cpu_seconds(database_backend_pids()).values())
        machine_after = psutil.cpu_times()
        server_rss = worker_rss_mib(server)
    finally:
        server.terminate()
        server.wait(timeout=20)

    sent = per_client * args.concurrency
    stored = Payment.objects.filter(lender__slug=slug).count() - before
    latencies.sort()
    busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine_before) - machine_before.idle - machine_before.iowait
    )
    cores = psutil.cpu_count() or 1
    rate = sent / elapsed
    app_cores = app_cpu / elapsed
    kind = (
        f"{args.workers} sync workers"
        if args.threads == 1
        else f"{args.workers} gthread workers x {args.threads} threads"
    )
    print(f"bench-payments: {sent} signed webhooks, {args.concurrency} connections, "
          f"gunicorn {kind}, PostgreSQL, one lender ({len(references)} loans)")  # fmt: skip
    print(
        f"  throughput   {rate:8.1f} webhooks/s  ({rate / args.workers:.1f} per worker, "
        f"{rate / app_cores if app_cores else float('nan'):.1f} per app core: "
        f"app used {app_cores:.2f} cores)"
    )
    print(f"  latency      p50 {percentile(latencies, 50):.1f} ms  p95 {percentile(latencies, 95):.1f} ms  "
          f"p99 {percentile(latencies, 99):.1f} ms  max {latencies[-1]:.1f} ms")  # fmt: skip
    print(f"  cpu/webhook  app {app_cpu / sent * 1000:.2f} ms  PostgreSQL {db_cpu / sent * 1000:.2f} ms  "
          f"load generator {own_cpu / sent * 1000:.2f} ms  "
          f"(machine {busy / elapsed / cores:.0%} busy of {cores} cores)")  # fmt: skip
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
