"""bench-lender-api: the lender API against a real server on PostgreSQL.

Seeds a lender with ``--devices`` enrolled phones (each on its own loan) and one API key in
a dedicated database, starts gunicorn with ``--workers`` sync workers on loopback, then
runs two phases from ``--concurrency`` keep-alive connections, each its own figures:

* reads: ``--reads`` GETs of ``/api/lender/v1/devices/<id>`` (a phone's state: desired and
  acknowledged versions, sync lag, its SIM and tamper reports), round the phones;
* writes: ``--writes`` POSTs of ``/api/lender/v1/payments``, each with its own
  ``Idempotency-Key`` and provider reference, round ``--loans`` active loans signed
  through the real services (a part payment of a schedule, as most are); every one must be stored
  once (the run counts the payments) and allocated, as the back office's are.

A first phase, the floor, GETs an empty DRF view (tools/bench/floor_urls.py: no key, no
scope, no throttle) through the same middleware and server as often as the reads: no
lender API call can cost less per app core on this machine in this run.

Each phase prints requests/s, requests/s per app core (divided by the CPU cores gunicorn's
master and workers actually used: the load generator and PostgreSQL share the machine, see
tools/bench/payments.py), p50/p95/p99 latency, errors, and at the end peak memory. Targets
(the lender API's issue): reads at least 800/s and writes at least 150/s per app core, p99
under 150 ms; a phase below them is marked.

The throttle per API key (LENDER_API_THROTTLE) is lifted for the run: it measures the path.
The tasks a request starts after it commits (a payment's receipt) run in a Celery worker on
a Redis broker of the run's own, as in production (tools/bench/_server.py's ``TaskWorker``):
each phase waits for them and prints their CPU per request beside the app's and
PostgreSQL's, and the cores the machine's other processes used meanwhile (the machine may
be shared: a figure per app core is read with that beside it).

Then the webhook deliveries' figure, from tools/bench/webhooks.py (deliveries per second
from one worker to a loopback receiver), run as its own program; ``--no-webhooks`` leaves it
out.

    make bench-lender-api                 # 5000 reads, 2000 writes
    make bench-lender-api N=20000         # N reads, N/4 writes
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.bench._seed import enrolled_seed, lender_seed, loans_seed, template_loan_seed
from tools.bench._server import (
    DatabaseCpu,
    TaskWorker,
    cpu_seconds,
    free_port,
    post_all,
    server_pids,
    start_server,
    worker_rss_mib,
)
from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib, percentile

API = "/api/lender/v1/"
# its own: other benches seed theirs (BENCH_DATABASE names another, e.g. one per checkout)
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "smartcollection_bench_lender_api")
TARGETS = {"reads": 800.0, "writes": 150.0}  # per app core
LOANS_TAG = "7"  # the national ids of the payments' loans' customers: 7000000, 7000001, ...
FLOOR = "/bench/floor"  # an empty DRF view (tools/bench/floor_urls.py)
P99_TARGET_MS = 150.0


@dataclass
class Phase:
    name: str
    sent: int
    rate: float
    per_app_core: float
    app_cores: float
    app_ms: float
    tasks_ms: float
    db_ms: float
    others_cores: float
    p50: float
    p95: float
    p99: float
    errors: list[str]


def request(method: str, path: str, *, port: int, key: str, body: Any = None) -> bytes:
    """One raw HTTP/1.1 request with the API key (and an Idempotency-Key on a POST)."""
    payload = json.dumps(body).encode() if body is not None else b""
    headers = {"Host": f"127.0.0.1:{port}", "Authorization": f"Api-Key {key}"}
    if method == "POST":
        headers |= {
            "Content-Type": "application/json",
            "Content-Length": str(len(payload)),
            "Idempotency-Key": uuid.uuid4().hex,
        }
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode() + payload


def measure(
    name: str,
    requests: list[bytes],
    *,
    port: int,
    server: Any,
    tasks: TaskWorker,
    concurrency: int,
    ok: int,
) -> Phase:
    import psutil

    pids = server_pids(server)
    before = cpu_seconds(pids)
    tasks_before = tasks.cpu_seconds()
    machine_before = psutil.cpu_times()
    database = DatabaseCpu()
    load = post_all(
        port, requests, concurrency=concurrency, accepted=lambda status, _body: status == ok
    )
    app_cpu = sum(cpu_seconds(pids).values()) - sum(before.values())
    drained = tasks.drain()  # the tasks the requests started, to the last: their CPU is theirs
    tasks_cpu = tasks.cpu_seconds() - tasks_before
    db_cpu = database.stop()
    machine_after = psutil.cpu_times()
    busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine_before) - machine_before.idle - machine_before.iowait
    )
    others = max(busy - app_cpu - tasks_cpu - db_cpu - load.own_cpu, 0) / (load.elapsed + drained)
    sent = len(load.latencies) + len([e for e in load.errors if e.startswith(("Conn", "OSE"))])
    rate = sent / load.elapsed
    app_cores = app_cpu / load.elapsed
    lat = load.latencies
    each = 1000 / sent if sent else float("nan")
    return Phase(
        name=name,
        sent=sent,
        rate=rate,
        per_app_core=rate / app_cores if app_cores else float("nan"),
        app_cores=app_cores,
        app_ms=app_cpu * each,
        tasks_ms=tasks_cpu * each,
        db_ms=db_cpu * each,
        others_cores=others,
        p50=percentile(lat, 50),
        p95=percentile(lat, 95),
        p99=percentile(lat, 99),
        errors=load.errors,
    )


def report(phase: Phase, unit: str) -> bool:
    target = TARGETS.get(phase.name, 0.0)
    met = phase.per_app_core >= target and phase.p99 < P99_TARGET_MS and not phase.errors
    print(
        f"  {phase.name:<7} {phase.sent} {unit}: {phase.rate:8.1f}/s, "
        f"{phase.per_app_core:.1f}/s per app core (app used {phase.app_cores:.2f} cores)  "
        f"p50 {phase.p50:.1f} ms  p95 {phase.p95:.1f} ms  p99 {phase.p99:.1f} ms  "
        f"errors {len(phase.errors)}\n"
        f"          CPU each: app {phase.app_ms:.2f} ms, task worker {phase.tasks_ms:.2f} ms, "
        f"PostgreSQL {phase.db_ms:.2f} ms; other processes used {phase.others_cores:.2f} cores"
        + (f" first: {phase.errors[0]}" if phase.errors else "")
        + (
            f"  [target >= {target:.0f}/s per app core, p99 < {P99_TARGET_MS:.0f} ms: "
            + ("met]" if met else "NOT MET]")
            if target
            else "  [the floor: no lender API call can cost less here]"
        )
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--loans", type=int, default=100, help="loans the payments go to")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--no-webhooks",
        action="store_true",
        help="leave out tools/bench/webhooks.py (webhook deliveries per second)",
    )
    args = parser.parse_args()

    os.environ["LENDER_API_THROTTLE"] = "100000000/min"  # measure the path, not the throttle
    django_on_bench_database(BENCH_DATABASE)
    from apps.collections.models import Loan, Payment
    from apps.core.actor import Actor
    from apps.devices.models import Device
    from apps.lenders.models import ApiKey
    from apps.lenders.services import api_key_create

    lender = lender_seed(slug="bench-lender-api", name="Bench lender API")
    enrolled_seed(lender=lender, template=template_loan_seed(lender), devices=args.devices)
    _, key = api_key_create(
        lender=lender,
        name=f"bench {time.time_ns():x}",
        scopes=ApiKey.Scope.values,
        expires_at=None,
        actor=Actor.system(),
    )
    phones = list(
        Device.objects.filter(lender=lender, status=Device.Status.ENROLLED)
        .order_by("pk")
        .values_list("pk", "loan_id")[: args.devices]
    )
    # the payments go to loans signed through the real services, each with its schedule and
    # far from paid off: the phones' loans above copy the template's terms without its
    # installments, so a payment would pay one off (and release its phone) at once
    loans_seed(lender=lender, loans=args.loans, tag=LOANS_TAG, phone_offset=10**7)
    loans = list(
        Loan.objects.filter(
            lender=lender,
            status=Loan.Status.ACTIVE,
            customer__national_id__regex=rf"^{LOANS_TAG}[0-9]{{6}}$",
        )
        .order_by("pk")
        .values_list("pk", flat=True)[: args.loans]
    )
    before = Payment.objects.filter(lender=lender).count()
    run = f"{time.time_ns():x}"

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="tools.bench.floor_settings", DJANGO_LOG_LEVEL="WARNING"
    )
    env.setdefault("DJANGO_CONN_MAX_AGE", "60")  # production's default
    port = free_port()
    share = args.concurrency
    reads = [
        request("GET", f"{API}devices/{phones[i % len(phones)][0]}", port=port, key=key)
        for i in range(args.reads - args.reads % share)
    ]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    writes = [
        request(
            "POST",
            f"{API}payments",
            port=port,
            key=key,
            body={
                "loan_id": loans[i % len(loans)],
                "amount": "10.00",
                "currency": "KES",
                "provider_reference": f"bench-{run}-{i}",
                "received_at": now,
            },
        )
        for i in range(args.writes - args.writes % share)
    ]
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-lender-api-")))
        tasks = stack.enter_context(TaskWorker(folder, env, name="bench-lender-api"))
        server = start_server(port, args.workers, 1, tasks.env)
        stack.callback(server.wait, timeout=20)
        stack.callback(server.terminate)
        phase = functools.partial(
            measure, port=port, server=server, tasks=tasks, concurrency=args.concurrency
        )
        # each worker's first calls load what it loads once (URLs, the DRF views, a
        # connection): not a call's cost, so a few of each GET go before the clock starts
        post_all(
            port,
            (reads[:100] + [request("GET", FLOOR, port=port, key=key)] * 100) * 2,
            concurrency=args.concurrency,
            accepted=lambda status, _body: status == 200,
        )
        floor = phase("floor", [request("GET", FLOOR, port=port, key=key)] * len(reads), ok=200)
        read = phase("reads", reads, ok=200)
        write = phase("writes", writes, ok=201)
        server_rss = worker_rss_mib(server)
        tasks_rss = tasks.peak_rss_mib()
    stored = Payment.objects.filter(lender=lender).count() - before

    print(
        f"bench-lender-api: gunicorn {args.workers} sync workers, {args.concurrency} "
        f"connections, PostgreSQL, one lender ({len(phones)} enrolled phones, one API key)"
    )
    report(floor, "GETs of an empty DRF view")
    met = report(read, "device-state reads")
    met = report(write, "payments posted with an Idempotency-Key") and met
    print(f"  payments stored {stored} for {len(writes)} posted")
    print(
        f"  peak memory  load generator {peak_rss_mib():.0f} MiB, "
        f"largest server process {server_rss:.0f} MiB, Celery worker {tasks_rss:.0f} MiB"
    )
    if not args.no_webhooks:
        subprocess.run([sys.executable, "-m", "tools.bench.webhooks"], cwd=ROOT, check=True)
    if floor.errors or read.errors or write.errors or stored != len(writes):
        raise SystemExit(1)
    if not met:
        print("  (a target was not met: see the marks above)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
