"""bench-payments: payment providers' callbacks against a real server on PostgreSQL.

Seeds a lender with loans in a dedicated database, starts gunicorn with
``--workers`` processes (``--threads`` each; more than one thread means the
gthread worker) on loopback, with a Celery worker for the tasks the callbacks
start (below), then posts N distinct payment callbacks of one
provider from ``--concurrency`` keep-alive connections. Prints throughput,
p50/p95/p99 latency, errors, the payments stored (must equal the callbacks
sent), peak memory, where the CPU went, and what verifying one callback costs
each provider, measured in this process with no server.

``--provider`` (tools/bench/_providers.py; each has a lender of its own):

* ``generic`` (the default): the product's own signed webhook;
* ``mpesa``: Daraja's C2B confirmations and STK callbacks, half each, on the
  lender's secret path from 127.0.0.1, put last in the server's allow-list
  after Safaricom's addresses; the STK callbacks answer prompts seeded as
  started;
* ``stripe``: ``payment_intent.succeeded`` events with ``Stripe-Signature``,
  answering checkouts seeded as started.

For the providers, the run also checks that every callback applied exactly
once (a payment per receipt or PaymentIntent, every prompt or checkout paid)
and that the server never called the provider's API (a loopback fake of it
counts the calls).

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

The tasks a callback starts once it commits (its payment's receipt) go, as in
production, to a Redis broker of the run's own and run in one Celery worker:
"per app core" is the web server's, and the worker's CPU is printed apart
("worker", per callback), counted until its queue has drained; the run fails if
a payment's receipt was not queued. ``--eager`` runs the tasks inside the request
instead, as the test settings do (and as this benchmark did before): their CPU
is then the app's.

Every generic event is signed (HMAC over timestamp and body), and every
Stripe event with Stripe's scheme; Daraja signs nothing. The requests are
built and signed before the clock starts, so that the load
generator, which shares the machine, spends its CPU sending rather than
encoding; a run must stay within the signature's tolerance (300 s by
default), which N=20000 does with a wide margin.

The server uses persistent database connections (``DJANGO_CONN_MAX_AGE``,
default 60 s, production's default in config/settings/base.py); the test
settings default to 0 so that pytest closes connections, which would make
every webhook pay for a new PostgreSQL backend and a SCRAM handshake.

    make bench-payments            # N=5000
    make bench-payments N=20000
    make bench-payments PROVIDER=mpesa
    python -m tools.bench.payments --provider stripe --eager
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tools.bench._providers import PROVIDERS, verification_costs
from tools.bench._seed import lender_seed, loans_seed
from tools.bench._server import (
    DatabaseCpu,
    TaskWorker,
    cpu_seconds,
    free_port,
    read_response,
    server_pids,
    start_server,
    worker_rss_mib,
)
from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib, percentile


def seed(*, slug: str, loans: int) -> tuple[Any, list[tuple[int, str]]]:
    """The bench lender ``slug`` with ``loans`` loans: the lender, each loan's id and reference."""
    from apps.collections.models import Loan

    lender = lender_seed(slug=slug, name="Bench")
    loans_seed(lender=lender, loans=loans)
    return lender, list(Loan.objects.filter(lender=lender).values_list("pk", "reference")[:loans])


def receipts_missing(*, lender: Any, after: int) -> int:
    """The lender's payments stored after payment id ``after`` whose receipt was not queued
    (the task each payment starts, run by the worker or in the web process)."""
    from apps.collections.models import Payment
    from apps.notifications.models import Notification

    keys = [
        f"payment:{pk}"
        for pk in Payment.objects.filter(lender=lender, pk__gt=after).values_list("pk", flat=True)
    ]
    queued = Notification.objects.filter(
        lender=lender, kind=Notification.Kind.PAYMENT, dedupe_key__in=keys
    ).count()
    return len(keys) - queued


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="generic")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="run the tasks a callback starts (its receipt) inside the web process, as the "
        "unit tests do, instead of in a Celery worker on a Redis broker as production does: "
        "their CPU is then the app's",
    )
    args = parser.parse_args()

    os.environ["PAYMENTS_WEBHOOK_THROTTLE"] = "100000000/min"  # measure the path, not the throttle
    django_on_bench_database()
    from apps.collections.models import Payment

    kind = PROVIDERS[args.provider]
    lender, loans = seed(slug=kind.slug, loans=args.loans)
    provider = kind(lender=lender, loans=loans, run_id=f"{time.time_ns():x}")
    before = Payment.objects.filter(lender=lender).count()

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DJANGO_LOG_LEVEL="WARNING"
    )
    env.setdefault("DJANGO_CONN_MAX_AGE", "60")  # production's default; see the docstring
    env.update(provider.server_env())
    port = free_port()
    per_client = args.events // args.concurrency
    requests = [post.raw(port) for post in provider.posts(per_client * args.concurrency)]
    last_payment = Payment.objects.filter(lender=lender).order_by("-pk").values_list("pk").first()
    stack = contextlib.ExitStack()
    tasks: TaskWorker | None = None
    if not args.eager:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-payments-")))
        tasks = stack.enter_context(TaskWorker(folder, env, name="bench-payments"))
        env = tasks.env
    try:
        server = start_server(port, args.workers, args.threads, env)
    except BaseException:
        stack.close()
        raise
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
            if not provider.answered(status, payload):
                bad.append(f"{status} {payload[:200]!r}")
        sock.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    import psutil

    app_pids = server_pids(server)
    app_before = cpu_seconds(app_pids)
    tasks_before = tasks.cpu_seconds() if tasks else 0.0
    machine_before = psutil.cpu_times()
    database = DatabaseCpu()  # the backends' CPU, sampled through the run
    try:
        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.concurrency)]
        started, own_cpu = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed, own_cpu = time.perf_counter() - started, time.process_time() - own_cpu
        app_cpu = sum(cpu_seconds(app_pids).values()) - sum(app_before.values())
        # the tasks the callbacks started, to the last: the worker's CPU is theirs
        drained = tasks.drain() if tasks else 0.0
        tasks_cpu = (tasks.cpu_seconds() - tasks_before) if tasks else 0.0
        tasks_left = tasks.pending() if tasks else 0
        tasks_rss = tasks.peak_rss_mib() if tasks else 0.0
        db_cpu = database.stop()
        machine_after = psutil.cpu_times()
        server_rss = worker_rss_mib(server)
    finally:
        server.terminate()
        server.wait(timeout=20)
        stack.close()

    sent = per_client * args.concurrency
    stored = Payment.objects.filter(lender=lender).count() - before
    try:
        problems, applied = provider.check()
    finally:
        provider.close()
    unreceipted = receipts_missing(lender=lender, after=last_payment[0] if last_payment else 0)
    if unreceipted:
        problems.append(f"{unreceipted} payments with no receipt queued")
    if tasks_left:
        problems.append(f"{tasks_left} tasks still pending {drained:.0f} s after the last callback")
    latencies.sort()
    busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine_before) - machine_before.idle - machine_before.iowait
    )
    window = elapsed + drained  # what the machine counters cover: the run and the drain
    cores = psutil.cpu_count() or 1
    rate = sent / elapsed
    app_cores = app_cpu / elapsed
    unit = provider.unit
    kind = (
        f"{args.workers} sync workers"
        if args.threads == 1
        else f"{args.workers} gthread workers x {args.threads} threads"
    )
    print(
        f"bench-payments: {provider.describe(sent)}, {args.concurrency} connections, "
        f"gunicorn {kind}, PostgreSQL, one lender ({len(loans)} loans)"
    )
    print(
        f"  throughput   {rate:8.1f} {unit}s/s  ({rate / args.workers:.1f} per worker, "
        f"{rate / app_cores if app_cores else float('nan'):.1f} per app core: "
        f"app used {app_cores:.2f} cores)"
    )
    print(
        f"  latency      p50 {percentile(latencies, 50):.1f} ms  p95 {percentile(latencies, 95):.1f} ms  "
        f"p99 {percentile(latencies, 99):.1f} ms  max {latencies[-1]:.1f} ms"
    )
    worker = f"worker {tasks_cpu / sent * 1000:.2f} ms  " if tasks else ""
    print(
        f"  cpu/{unit:<9}app {app_cpu / sent * 1000:.2f} ms  {worker}"
        f"PostgreSQL {db_cpu / sent * 1000:.2f} ms  "
        f"load generator {own_cpu / sent * 1000:.2f} ms  "
        f"(machine {busy / window / cores:.0%} busy of {cores} cores, "
        f"{max(busy - app_cpu - tasks_cpu - db_cpu - own_cpu, 0) / window:.2f} cores by other "
        "processes)"
    )
    if tasks:
        print(
            "  tasks        in a Celery worker on Redis, as in production (its CPU: worker, "
            f"above), the queue drained {drained:.1f} s after the last {unit}"
        )
    else:
        print("  tasks        eager, in the web process (--eager): their CPU is the app's")
    print(f"  errors       {len(errors)}" + (f"  first: {errors[0]}" if errors else ""))
    print(f"  payments     {stored} stored for {sent} distinct events")
    if applied:
        print(f"  applied      {applied}")
    for problem in problems:
        print(f"  PROBLEM      {problem}")
    print(
        f"  peak memory  load generator {peak_rss_mib():.0f} MiB, largest server process "
        f"{server_rss:.0f} MiB" + (f", Celery worker {tasks_rss:.0f} MiB" if tasks else "")
    )
    costs = verification_costs()  # after the run, in this process: no server, no database
    print(f"  verifying    per callback, in-process: {costs[0]}")
    for line in costs[1:]:
        print(f"               {line}")
    if errors or stored != sent or problems:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
