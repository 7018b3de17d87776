"""Shared by the benchmarks and drills that drive the product's own processes: gunicorn and
a Celery worker on loopback, a Redis broker of the run's own, raw HTTP/1.1 on keep-alive
sockets, and the CPU and memory of the processes involved."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tools.bench._setup import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of a run's own on a free loopback port. With ``keep``, its data
    survives a shutdown (append-only file, fsync always), as a production broker's does."""

    def __init__(self, folder: Path, *, keep: bool = False) -> None:
        self.folder, self.keep, self.port = folder, keep, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.keep
            else ["--appendonly", "no"]
        )
        subprocess.run(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                *persistence,
                "--daemonize",
                "yes",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.cli("SHUTDOWN")  # with keep, writes the append-only file first

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [shutil.which("redis-cli") or "redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    def queued(self) -> int:
        """Tasks waiting in the product's queues."""
        from django.conf import settings

        return sum(int(self.cli("LLEN", q) or 0) for q in settings.TASK_QUEUE_NAMES)

    def waiting(self) -> dict[str, Counter[str]]:
        """Per queue, the names of the tasks waiting in it (what a drill prints on failure)."""
        from django.conf import settings

        found: dict[str, Counter[str]] = {}
        for queue in settings.TASK_QUEUE_NAMES:
            bodies = self.cli("LRANGE", queue, "0", "-1").splitlines()
            names = Counter(json.loads(b).get("headers", {}).get("task", "?") for b in bodies if b)
            if names:
                found[queue] = names
        return found

    def unacked(self) -> int:
        """Tasks taken by a worker and not yet acknowledged (late acks)."""
        return int(self.cli("HLEN", "unacked") or 0)


def celery_worker_command(name: str, *, queues: str = "", loglevel: str = "WARNING") -> list[str]:
    """A one-process Celery worker of the product (all queues unless ``queues``)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-P",
        "solo",
        "-n",
        f"{name}@run",
        *(["-Q", queues] if queues else []),
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


class TaskWorker:
    """A Redis broker of the run's own and one Celery worker of the product (every queue), as
    production runs the tasks a request starts after it commits: ``env`` is the caller's
    environment with the tasks sent to that broker (not run eagerly in the web process)."""

    def __init__(self, folder: Path, env: dict[str, str], *, name: str = "bench") -> None:
        self.broker, self.name, self.log = RedisServer(folder), name, folder / "celery.log"
        self.env = {
            **env,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_BROKER_URL": self.broker.url,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> TaskWorker:
        self.broker.start()
        try:
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    celery_worker_command(self.name), cwd=ROOT, env=self.env, stdout=log, stderr=log
                )
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.broker.stop()

    def _wait_ready(self, timeout: float = 60) -> None:
        """Until the worker waits on its queues (a blocking pop at the broker): its start-up
        is over before a run's clock starts, so none of its CPU is counted."""
        deadline = time.monotonic() + timeout
        while "cmd=brpop" not in self.broker.cli("CLIENT", "LIST"):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
            time.sleep(0.2)

    def pending(self) -> int:
        """Tasks queued or taken and not yet done (acknowledged late, once done)."""
        return self.broker.queued() + self.broker.unacked()

    def drain(self, timeout: float = 300) -> float:
        """Wait until no task is pending; the seconds waited (``timeout`` at most)."""
        started = time.perf_counter()
        while self.pending() and time.perf_counter() - started < timeout:
            time.sleep(0.05)
        return time.perf_counter() - started

    def cpu_seconds(self) -> float:
        """user + system CPU seconds of the worker so far."""
        return sum(cpu_seconds([self.process.pid]).values()) if self.process else 0.0

    def peak_rss_mib(self) -> float:
        return process_peak_rss_mib(self.process.pid) if self.process else float("nan")


def start_server(
    port: int, workers: int, threads: int, env: dict[str, str], log: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """gunicorn on loopback ``port``, once it accepts connections and has forked its
    ``workers`` (the master listens first: a caller that lists the server's processes to
    count their CPU, as soon as a connection succeeds, would miss a worker forked late on a
    busy machine); its output to ``log`` (default: ours)."""
    worker_class = ["--worker-class", "sync"] if threads == 1 else ["--threads", str(threads)]
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        *worker_class,
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "--timeout",
        "60",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    import psutil

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            time.sleep(0.2)
            continue
        if len(psutil.Process(server.pid).children()) >= workers:
            return server
        time.sleep(0.1)
    server.kill()
    raise SystemExit("gunicorn did not start")


def process_peak_rss_mib(pid: int) -> float:
    """The peak resident memory of process ``pid`` so far (VmHWM), MiB; nan once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def worker_rss_mib(server: subprocess.Popen[bytes]) -> float:
    """The largest peak resident memory among the server's master and workers, MiB."""
    import psutil

    parent = psutil.Process(server.pid)
    return max((process_peak_rss_mib(p.pid) for p in [parent, *parent.children()]), default=0.0)


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


def database_url() -> str:
    """The URL of the database Django is on now, for a child process's DATABASE_URL (the
    drills start the product on their test database)."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    return (
        f"postgres://{quote(db['USER'], safe='')}:{quote(db['PASSWORD'], safe='')}"
        f"@{db['HOST']}:{db['PORT']}/{quote(db['NAME'], safe='')}"
    )


def database_backend_pids() -> list[int]:
    """PostgreSQL backends connected to this database, except our own connection."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


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


class DatabaseCpu:
    """CPU seconds spent by this database's backends from now until ``stop()``.

    A worker replaces its persistent connection once it is older than
    ``DJANGO_CONN_MAX_AGE``, and a run can last longer than that: a backend
    read only at the end would miss those that have exited. A thread samples
    the backends twice a second, so at most half a second of an exiting
    backend's CPU is lost.
    """

    def __init__(self, interval: float = 0.5) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (self.own,) = cursor.fetchone()  # this thread's backend, seeding's CPU and all
        self.baseline = cpu_seconds(database_backend_pids())
        self.last = dict(self.baseline)
        self.watcher_backend: int | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, args=(interval,), daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        pids = [p for p in database_backend_pids() if p not in (self.own, self.watcher_backend)]
        self.last.update(cpu_seconds(pids))

    def _watch(self, interval: float) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (self.watcher_backend,) = cursor.fetchone()
            while not self.done.wait(interval):
                self._sample()
        finally:
            connection.close()

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self._sample()
        return sum(seconds - self.baseline.get(pid, 0.0) for pid, seconds in self.last.items())


@dataclass
class Load:
    """What ``post_all`` measured: each request's latency (ms), the answers it did not
    accept, the wall time and the load generator's own CPU."""

    latencies: list[float]
    errors: list[str]
    elapsed: float
    own_cpu: float


def post_all(
    port: int,
    requests: list[bytes],
    *,
    concurrency: int,
    accepted: Callable[[int, bytes], bool],
) -> Load:
    """Send ``requests`` (raw HTTP/1.1, built beforehand) to loopback ``port`` from
    ``concurrency`` keep-alive connections, each its share in turn; reconnects where the
    server closes (gunicorn's sync worker answers ``Connection: close``)."""
    share = len(requests) // concurrency
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
        for request in requests[c * share : (c + 1) * share]:
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
            if not accepted(status, payload):
                bad.append(f"{status} {payload[:200]!r}")
        sock.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(concurrency)]
    started, own_cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, own_cpu = time.perf_counter() - started, time.process_time() - own_cpu
    latencies.sort()
    return Load(latencies, errors, elapsed, own_cpu)


@dataclass
class WorkerRun:
    """What one worker's run cost: seconds until done, its CPU, this process's CPU meanwhile
    (the fake or receiver it serves), PostgreSQL's, and the worker's peak memory (MiB)."""

    elapsed: float
    worker_cpu: float
    own_cpu: float
    db_cpu: float
    worker_rss: float


def worker_run(
    *,
    command: list[str],
    env: dict[str, str],
    folder: Path,
    broker: RedisServer,
    task: str,
    queue: str,
    done: Callable[[], bool],
) -> WorkerRun:
    """Start the worker ``command`` (its log in ``folder``), send it ``task`` once on
    ``queue`` through ``broker``, as beat sends it, and time the run until ``done()``; the
    worker is stopped at the end. Its start is not counted: it is given 3 s to consume."""
    log_path = folder / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        from kombu import Connection

        from config.celery import app

        time.sleep(3)  # the worker up and consuming: its start is not the run's cost
        database = DatabaseCpu()
        before, own_before = cpu_seconds([worker.pid]), time.process_time()
        started = time.perf_counter()
        with Connection(broker.url) as connection:
            app.send_task(task, queue=queue, connection=connection)
        while not done():
            if worker.poll() is not None:
                raise SystemExit(f"the worker ended; its log: {log_path}")
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        return WorkerRun(
            elapsed=elapsed,
            worker_cpu=sum(cpu_seconds([worker.pid]).values()) - sum(before.values()),
            own_cpu=time.process_time() - own_before,
            db_cpu=database.stop(),
            worker_rss=process_peak_rss_mib(worker.pid),
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def run_broker(prefix: str) -> tuple[Path, RedisServer]:
    """A folder of the run's own and a Redis broker in it, started, which this process's
    Celery sends to (tasks no longer eager): the set-up of a run that drives a worker."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    broker = RedisServer(folder)
    broker.start()
    os.environ["CELERY_BROKER_URL"] = broker.url
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"  # this process sends the task to it
    return folder, broker
