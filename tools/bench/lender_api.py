"""bench-lender-api: the lender API against a real server on PostgreSQL.

Seeds a lender with ``--devices`` enrolled phones (each on its own loan) and one API key in
a dedicated database, starts gunicorn with ``--workers`` sync workers on loopback, then
runs two phases from ``--concurrency`` keep-alive connections, each its own figures:

* reads: ``--reads`` GETs of ``/api/lender/v1/devices/<id>`` (a phone's state: desired and
  acknowledged versions, sync lag, its SIM and tamper reports), round the phones;
* writes: ``--writes`` POSTs of ``/api/lender/v1/payments``, each with its own
  ``Idempotency-Key`` and provider reference, round the loans; every one must be stored
  once (the run counts the payments) and allocated, as the back office's are.

Each phase prints requests/s, requests/s per app core (divided by the CPU cores gunicorn's
master and workers actually used: the load generator and PostgreSQL share the machine, see
tools/bench/payments.py), p50/p95/p99 latency, errors, and at the end peak memory. Targets
(the lender API's issue): reads at least 800/s and writes at least 150/s per app core, p99
under 150 ms; a phase below them is marked.

The throttle per API key (LENDER_API_THROTTLE) is lifted for the run: it measures the path.

``--webhooks`` adds the webhook deliveries' figure from tools/bench/webhooks.py (deliveries
per second from one worker to a loopback receiver), run as its own program when it is there.

    make bench-lender-api                 # 5000 reads, 2000 writes
    make bench-lender-api N=20000         # N reads, N/4 writes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.bench._seed import enrolled_seed, lender_seed, template_loan_seed
from tools.bench._server import (
    DatabaseCpu,
    cpu_seconds,
    free_port,
    post_all,
    server_pids,
    start_server,
    worker_rss_mib,
)
from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib, percentile

API = "/api/lender/v1/"
BENCH_DATABASE = "smartcollection_bench_lender_api"  # its own: other benches seed theirs
TARGETS = {"reads": 800.0, "writes": 150.0}  # per app core
P99_TARGET_MS = 150.0
WEBHOOK_BENCH = Path(ROOT) / "tools" / "bench" / "webhooks.py"  # the deliveries' own bench


@dataclass
class Phase:
    name: str
    sent: int
    rate: float
    per_app_core: float
    app_cores: float
    db_ms: float
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
    name: str, requests: list[bytes], *, port: int, server: Any, concurrency: int, ok: int
) -> Phase:
    pids = server_pids(server)
    before = cpu_seconds(pids)
    database = DatabaseCpu()
    load = post_all(
        port, requests, concurrency=concurrency, accepted=lambda status, _body: status == ok
    )
    app_cpu = sum(cpu_seconds(pids).values()) - sum(before.values())
    db_cpu = database.stop()
    sent = len(load.latencies) + len([e for e in load.errors if e.startswith(("Conn", "OSE"))])
    rate = sent / load.elapsed
    app_cores = app_cpu / load.elapsed
    lat = load.latencies
    return Phase(
        name=name,
        sent=sent,
        rate=rate,
        per_app_core=rate / app_cores if app_cores else float("nan"),
        app_cores=app_cores,
        db_ms=db_cpu / sent * 1000 if sent else float("nan"),
        p50=percentile(lat, 50),
        p95=percentile(lat, 95),
        p99=percentile(lat, 99),
        errors=load.errors,
    )


def report(phase: Phase, unit: str) -> bool:
    target = TARGETS[phase.name]
    met = phase.per_app_core >= target and phase.p99 < P99_TARGET_MS and not phase.errors
    print(
        f"  {phase.name:<7} {phase.sent} {unit}: {phase.rate:8.1f}/s, "
        f"{phase.per_app_core:.1f}/s per app core (app used {phase.app_cores:.2f} cores; "
        f"PostgreSQL {phase.db_ms:.2f} ms CPU each)  "
        f"p50 {phase.p50:.1f} ms  p95 {phase.p95:.1f} ms  p99 {phase.p99:.1f} ms  "
        f"errors {len(phase.errors)}"
        + (f" first: {phase.errors[0]}" if phase.errors else "")
        + f"  [target >= {target:.0f}/s per app core, p99 < {P99_TARGET_MS:.0f} ms: "
        + ("met]" if met else "NOT MET]")
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="also run tools/bench/webhooks.py (webhook deliveries per second)",
    )
    args = parser.parse_args()

    os.environ["LENDER_API_THROTTLE"] = "100000000/min"  # measure the path, not the throttle
    django_on_bench_database(BENCH_DATABASE)
    from apps.collections.models import Payment
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
    before = Payment.objects.filter(lender=lender).count()
    run = f"{time.time_ns():x}"

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DJANGO_LOG_LEVEL="WARNING"
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
                "loan_id": phones[i % len(phones)][1],
                "amount": "10.00",
                "currency": "KES",
                "provider_reference": f"bench-{run}-{i}",
                "received_at": now,
            },
        )
        for i in range(args.writes - args.writes % share)
    ]
    server = start_server(port, args.workers, 1, env)
    try:
        read = measure(
            "reads", reads, port=port, server=server, concurrency=args.concurrency, ok=200
        )
        write = measure(
            "writes", writes, port=port, server=server, concurrency=args.concurrency, ok=201
        )
        server_rss = worker_rss_mib(server)
    finally:
        server.terminate()
        server.wait(timeout=20)
    stored = Payment.objects.filter(lender=lender).count() - before

    print(
        f"bench-lender-api: gunicorn {args.workers} sync workers, {args.concurrency} "
        f"connections, PostgreSQL, one lender ({len(phones)} enrolled phones, one API key)"
    )
    met = report(read, "device-state reads")
    met = report(write, "payments posted with an Idempotency-Key") and met
    print(f"  payments stored {stored} for {len(writes)} posted")
    print(
        f"  peak memory  load generator {peak_rss_mib():.0f} MiB, "
        f"largest server process {server_rss:.0f} MiB"
    )
    if args.webhooks:
        if WEBHOOK_BENCH.exists():
            subprocess.run([sys.executable, "-m", "tools.bench.webhooks"], cwd=ROOT, check=True)
        else:
            print("  webhooks     not measured: tools/bench/webhooks.py is not there")
    if read.errors or write.errors or stored != len(writes):
        raise SystemExit(1)
    if not met:
        print("  (a target was not met: see the marks above)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
