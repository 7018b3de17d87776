"""bench-agent: agent check-ins against a real server, then an FCM fan-out, on PostgreSQL.

Two measurements in one run, against the dedicated database
``smartcollection_bench_agent``:

1. Check-ins. N enrolled devices (``--devices``, default 2000), each on its
   own loan, having acknowledged its first state, are seeded set-based (bulk
   inserts and ``device_states_write``, no enrollment service per phone).
   At each run, one phone in ten gets a new state it has not pulled yet.
   gunicorn starts on loopback (``--workers`` sync workers) and
   ``--concurrency`` keep-alive clients post ``--checkins`` check-ins
   (default 20000) with the devices' own credentials and the version each
   acknowledged: the phones behind get their new state, signed when served;
   the others are current and get ``{"state": null}``. Throughput is printed per worker and per app core
   (check-ins/s over the CPU cores gunicorn actually used, as in
   bench-payments), with p50/p95/p99 latency, errors (any answer but 200) and
   the CPU that PostgreSQL and the load generator spent per check-in.
   Target: at least 500 check-ins/s per app core.

2. FCM fan-out. ``--pushes`` nudges (default 100000), each to a distinct
   phone with a push token, go through the real relay
   (``push_relay_run``) and the real ``FcmGateway`` (firebase-admin) in this
   process, against the loopback fake FCM running as a separate process
   (``python -m tests.fakes.fcm --no-record``), so the sender shares no GIL
   with it. The relay claims at most 500 nudges per batch, which keeps its
   memory flat; the bench process's peak RSS is printed. The fake's accepted
   count must equal the nudges, with no failures. Target: at least 1,000
   messages/s per sender process.

The requests are built before the clock starts, so that the load generator,
which shares the machine, spends its CPU sending, and each worker's first
requests (imports, URL resolver) are sent before it too. The server keeps
its database connections (``DJANGO_CONN_MAX_AGE``, default 60 s as in
production); since a worker replaces its connection after that, the
backends' CPU is sampled during the run rather than read once at its end.
The agent throttle is raised out of the way: this measures the check-in,
not the throttle. Seeded rows are kept between runs (a larger N adds the
missing ones); the outbox is emptied at the start of each run.

    make bench-agent               # N=2000 devices, 20000 check-ins, 100000 pushes
    make bench-agent N=5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.bench._seed import CHUNK, device_secret, enrolled_seed, lender_seed, template_loan_seed
from tools.bench._server import (
    DatabaseCpu,
    cpu_seconds,
    free_port,
    read_response,
    server_pids,
    start_server,
    worker_rss_mib,
)
from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib, percentile

DATABASE = "smartcollection_bench_agent"
SLUG = "bench-agent"
BEHIND_EVERY = 10  # one phone in ten has a state it has not pulled yet
CHECKIN_TARGET = 500  # check-ins/s per app core
PUSH_TARGET = 1000  # messages/s per sender process

Phone = tuple[int, str, int, int]  # id, IMEI, acknowledged version, desired version


def seed_lender() -> tuple[Any, Any]:
    """The bench lender and one loan signed through the real services, the template of the rest."""
    lender = lender_seed(slug=SLUG, name="Bench agent")
    return lender, template_loan_seed(lender)


def put_behind(*, lender: Any, phones: list[int]) -> None:
    """Give one phone in ``BEHIND_EVERY`` a new state it has not pulled yet (one
    ``device_states_write``): those phones check in with the version they acknowledged
    and get the new one, signed; the others are current.

    Done at each run, so that the state handed out is fresh: one whose offline
    lease is about to end would be re-issued by the check-in first.
    """
    from django.db import transaction

    from apps.core.actor import Actor
    from apps.devices.services.state_writer import StateChange, device_states_write

    with transaction.atomic():
        device_states_write(
            lender_id=lender.pk,
            actor=Actor.system(),
            reason="Benchmark run.",
            changes=[
                StateChange.of(
                    device_id=pk,
                    level="reminder",
                    locale="en",
                    wallpaper_text="Your payment is due.",
                )
                for pk in phones[::BEHIND_EVERY]
            ],
        )


def seed_push_phones(*, lender: Any, template: Any, phones: int) -> list[int]:
    """Ids of ``phones`` phones with a push token, to receive one nudge each.

    Released phones, so that they can share the template's loan; the relay
    sends to any phone with a live push address. Their tokens are shaped like
    FCM registration tokens (about 160 characters).
    """
    from django.utils import timezone

    from apps.devices.models import Device

    released = Device.objects.filter(lender=lender, status=Device.Status.RELEASED)
    for first in range(released.count(), phones, CHUNK):
        now = timezone.now()
        Device.objects.bulk_create(
            Device(
                lender=lender,
                loan=template,
                imei=f"36{n:013d}",
                brand="Bench",
                model_name="A1",
                status=Device.Status.RELEASED,
                released_at=now,
                fcm_token=f"bench{n:07d}:APA91b{'x' * 140}",
            )
            for n in range(first, min(first + CHUNK, phones))
        )
    return list(released.order_by("pk").values_list("pk", flat=True)[:phones])


@dataclass
class Answers:
    latencies: list[float] = field(default_factory=list)  # ms
    errors: list[str] = field(default_factory=list)
    states: int = 0  # answers that carried the signed state
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class CheckInFigures:
    sent: int
    behind: int  # check-ins from phones with a state to pull
    elapsed: float
    app_cpu: float
    db_cpu: float
    own_cpu: float
    busy: float
    latencies: list[float]
    errors: list[str]
    states: int  # answers that carried the signed state
    server_rss: float


def checkin_requests(*, phones: list[Phone], checkins: int, port: int) -> list[bytes]:
    """Each check-in as the raw HTTP/1.1 request the agent sends, with the version the phone
    acknowledged."""
    requests = []
    for n in range(checkins):
        device_id, imei, applied, _ = phones[n % len(phones)]
        body = json.dumps({"version": applied, "agent_version": "1.0", "battery": 80}).encode()
        head = (
            f"POST /api/agent/v1/check-in HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Authorization: Device {device_id}:{device_secret(imei)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def run_checkins(*, phones: list[Phone], args: argparse.Namespace) -> CheckInFigures:
    import socket

    import psutil

    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="config.settings.test", DJANGO_LOG_LEVEL="WARNING"
    )
    env.setdefault("DJANGO_CONN_MAX_AGE", "60")  # production's default; see the docstring
    port = free_port()
    requests = checkin_requests(phones=phones, checkins=args.checkins, port=port)
    behind = sum(
        1 for n in range(args.checkins) if phones[n % len(phones)][2] < phones[n % len(phones)][3]
    )
    server = start_server(port, args.workers, 1, env)

    def connect() -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def fire(batch: list[bytes], out: Answers) -> None:
        sock = connect()
        mine, bad, with_state, buffer = [], [], 0, b""
        for request in batch:
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
            elif not payload.startswith(b'{"state":null'):
                with_state += 1
        sock.close()
        with out.lock:
            out.latencies.extend(mine)
            out.errors.extend(bad)
            out.states += with_state

    def run(todo: list[bytes], out: Answers) -> None:
        # Interleaved: at any moment the clients work on neighbouring requests, which
        # are distinct phones, so they do not queue on one phone's row lock.
        threads = [
            threading.Thread(target=fire, args=(todo[c :: args.concurrency], out))
            for c in range(args.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    answers = Answers()
    try:
        # Not measured: each worker's first requests import and set up what it serves.
        run(requests[: 50 * args.workers], Answers())
        app_pids = server_pids(server)
        app_before = cpu_seconds(app_pids)
        machine_before = psutil.cpu_times()
        database = DatabaseCpu()
        started, own_cpu = time.perf_counter(), time.process_time()
        run(requests, answers)
        elapsed, own_cpu = time.perf_counter() - started, time.process_time() - own_cpu
        app_cpu = sum(cpu_seconds(app_pids).values()) - sum(app_before.values())
        db_cpu = database.stop()
        machine_after = psutil.cpu_times()
        server_rss = worker_rss_mib(server)
    finally:
        server.terminate()
        server.wait(timeout=20)
    busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine_before) - machine_before.idle - machine_before.iowait
    )
    return CheckInFigures(
        sent=len(requests),
        behind=behind,
        elapsed=elapsed,
        app_cpu=app_cpu,
        db_cpu=db_cpu,
        own_cpu=own_cpu,
        busy=busy,
        latencies=sorted(answers.latencies),
        errors=answers.errors,
        states=answers.states,
        server_rss=server_rss,
    )


@dataclass
class PushFigures:
    nudges: int
    elapsed: float
    batches: int
    results: dict[str, int]  # the gateway's answers: outcome, or error code when not sent
    sent: int  # nudges stored as sent
    fake: dict[str, Any]  # the fake's own counts
    sender_cpu: float
    fake_cpu: float
    db_cpu: float
    rss_before: float
    rss_after: float


class TallyingGateway:
    """A push gateway that counts what another one answers: outcome, or error code."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.results: Counter[str] = Counter()

    def send(self, messages: list[Any]) -> list[Any]:
        results = self.gateway.send(messages)
        self.results.update(r.error_code or str(r.outcome) for r in results)
        return results


def start_fake_fcm() -> tuple[subprocess.Popen[str], int]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fcm", "--no-record"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = fake.stdout.readline() if fake.stdout else ""
    if not line.strip().isdigit():
        fake.kill()
        raise SystemExit("the fake FCM did not start")
    return fake, int(line)


def run_pushes(*, lender: Any, phone_ids: list[int]) -> PushFigures:
    import urllib.request

    import psutil
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.devices.models import PushNudge
    from apps.devices.services.push import push_next_due_in, push_relay_run
    from apps.integrations.push.fcm import FcmGateway
    from tests.fakes.fcm import service_account_file

    # Each run starts from an empty outbox. The nudges are inserted as push_nudges_enqueue
    # writes them, but without its after-commit kick: the test settings run tasks eagerly,
    # which would start a relay here, with the demo's logging gateway, before the clock.
    PushNudge.objects.filter(lender=lender).delete()
    for first in range(0, len(phone_ids), CHUNK):
        now = timezone.now()
        with transaction.atomic():
            PushNudge.objects.bulk_create(
                PushNudge(lender=lender, device_id=pk, version=1, next_attempt_at=now)
                for pk in phone_ids[first : first + CHUNK]
            )
    fake, port = start_fake_fcm()
    try:
        with tempfile.TemporaryDirectory() as folder:
            base = f"http://127.0.0.1:{port}"
            credentials = service_account_file(Path(folder) / "fcm.json", token_uri=f"{base}/token")
            gateway = TallyingGateway(
                FcmGateway(
                    credentials_file=str(credentials),
                    api_base=base,
                    ttl_seconds=settings.PUSH_TTL_SECONDS,
                )
            )
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (backend,) = cursor.fetchone()
            me = psutil.Process()
            rss_before = me.memory_info().rss / 2**20
            pids = [me.pid, fake.pid, backend]
            cpu_before = cpu_seconds(pids)
            started = time.perf_counter()
            batches = 0
            while True:  # as push_relay_task does, until no retry waits
                batches += push_relay_run(gateway=gateway, time_budget=3600).batches
                due_in = push_next_due_in()
                if due_in is None:
                    break
                time.sleep(due_in)
            elapsed = time.perf_counter() - started
            cpu = {
                pid: seconds - cpu_before.get(pid, 0.0)
                for pid, seconds in cpu_seconds(pids).items()
            }
            rss_after = me.memory_info().rss / 2**20
        with urllib.request.urlopen(f"{base}/", timeout=10) as answer:  # noqa: S310  (loopback)
            counts = json.load(answer)
    finally:
        fake.terminate()
        fake.wait(timeout=20)
    sent = PushNudge.objects.filter(lender=lender, status=PushNudge.Status.SENT).count()
    return PushFigures(
        nudges=len(phone_ids),
        elapsed=elapsed,
        batches=batches,
        results=dict(gateway.results),
        sent=sent,
        fake=counts,
        sender_cpu=cpu[me.pid],
        fake_cpu=cpu.get(fake.pid, 0.0),
        db_cpu=cpu.get(backend, 0.0),
        rss_before=rss_before,
        rss_after=rss_after,
    )


def row(label: str, value: str, target: str = "", ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("ok" if ok else "NOT MET")
    print(f"  {label:<30} {value:<62} {target:<10} {verdict}".rstrip())


def report(c: CheckInFigures, p: PushFigures, args: argparse.Namespace, phones: int) -> bool:
    """Print the table; True when the run was clean (no errors, every push accepted)."""
    import psutil

    cores = psutil.cpu_count() or 1
    rate, app_cores = c.sent / c.elapsed, c.app_cpu / c.elapsed
    per_core = rate / app_cores if app_cores else float("nan")
    behind = c.behind
    lat = c.latencies
    ms = " / ".join(f"{percentile(lat, q):.1f}" for q in (50, 95, 99))
    print(
        f"bench-agent: {c.sent} check-ins from {phones} enrolled phones (1 in {BEHIND_EVERY} behind), "
        f"{args.concurrency} connections, gunicorn {args.workers} sync workers, PostgreSQL"
    )
    row("check-ins", "", "target")
    row("throughput", f"{rate:.1f}/s ({rate / args.workers:.1f} per worker)")
    row(
        "per app core",
        f"{per_core:.1f}/s (app used {app_cores:.2f} cores)",
        f">= {CHECKIN_TARGET}/s",
        per_core >= CHECKIN_TARGET,
    )
    row("latency p50 / p95 / p99, max", f"{ms} ms, {lat[-1] if lat else float('nan'):.1f} ms")
    row(
        "cpu per check-in",
        f"app {c.app_cpu / c.sent * 1000:.2f} ms, PostgreSQL {c.db_cpu / c.sent * 1000:.2f} ms, "
        f"load generator {c.own_cpu / c.sent * 1000:.2f} ms",
    )
    row("machine", f"{c.busy / c.elapsed / cores:.0%} busy of {cores} cores")
    row(
        "errors (any answer but 200)",
        str(len(c.errors)) + (f", first: {c.errors[0]}" if c.errors else ""),
        "0",
        not c.errors,
    )
    row(
        "signed states handed out",
        f"{c.states} for {behind} check-ins from phones behind",
        str(behind),
        c.states == behind,
    )
    rate = p.sent / p.elapsed if p.elapsed else float("nan")
    failures = p.nudges - p.sent
    answers = ", ".join(f"{k} {v}" for k, v in sorted(p.results.items()))
    accepted = p.fake.get("accepted")
    sent = max(p.sent, 1)
    row(
        f"fcm fan-out: {p.nudges} nudges",
        "push_relay_run + FcmGateway here, fake FCM in another process",
    )
    row(
        "messages/s (1 sender process)",
        f"{rate:.1f}/s ({p.sent} sent in {p.elapsed:.1f} s, {p.batches} batches)",
        f">= {PUSH_TARGET}/s",
        rate >= PUSH_TARGET,
    )
    row(
        "fake FCM accepted",
        f"{accepted} (refused {p.fake.get('refused')}, "
        f"token requests {p.fake.get('token_requests')})",
        str(p.nudges),
        accepted == p.nudges,
    )
    row("failures", f"{failures} (gateway answers: {answers})", "0", failures == 0)
    row(
        "cpu per message",
        f"sender {p.sender_cpu / sent * 1000:.3f} ms, fake FCM {p.fake_cpu / sent * 1000:.3f} ms, "
        f"PostgreSQL {p.db_cpu / sent * 1000:.3f} ms",
    )
    row(
        "peak_rss_mib (bench process)",
        f"{peak_rss_mib():.0f} (RSS {p.rss_before:.0f} MiB before the relay, "
        f"{p.rss_after:.0f} MiB after)",
    )
    row("largest server process", f"{c.server_rss:.0f} MiB")
    return not c.errors and c.states == behind and failures == 0 and accepted == p.nudges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--checkins", type=int, default=20000)
    parser.add_argument("--pushes", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    os.environ["AGENT_API_THROTTLE"] = "100000000/min"  # measure the check-in, not the throttle
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")  # not a line per eager relay task
    django_on_bench_database(DATABASE)
    from apps.devices.models import Device

    lender, template = seed_lender()
    enrolled_seed(lender=lender, template=template, devices=args.devices)
    phone_ids = seed_push_phones(lender=lender, template=template, phones=args.pushes)
    enrolled = Device.objects.filter(lender=lender, status=Device.Status.ENROLLED).order_by("pk")
    put_behind(lender=lender, phones=list(enrolled.values_list("pk", flat=True)[: args.devices]))
    phones = list(
        enrolled.values_list("pk", "imei", "acked_version", "desired_version")[: args.devices]
    )
    checkins = run_checkins(phones=phones, args=args)
    pushes = run_pushes(lender=lender, phone_ids=phone_ids)
    if not report(checkins, pushes, args, len(phones)):
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
