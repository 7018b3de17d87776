"""Drill 3: a morning's sweep and the day's payments while workers are killed, the broker goes
away, and two beat processes fire the same schedule. Every stage change, phone state, push and
notice happens exactly once, counted from the database and from the loopback FCM.

Everything runs as it does in production, in processes of its own: two `celery beat` processes
on django-celery-beat's tables (the day compressed: the lender's sweep fires every 2 s, the
push relay every second, all on one business date), a sweep worker SIGKILLed at random moments
and started again, a worker for pushes and notices, gunicorn serving the payment webhook, and a
Redis broker of the drill's own (append-only file on, as a production broker keeps it) that is
shut down and started again."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.collections.models import Loan, LoanStageChange, Payment
from apps.collections.selectors import loan_overview
from apps.core.models import TaskOutbox
from apps.core.schedule import periodic_tasks_sync
from apps.devices.models import DeviceState, PushNudge
from apps.lenders.selectors import lender_clock_list
from apps.notifications.models import Notification
from tests.collections.webhooks import URL, event, headers
from tests.devices.factories import enrolled_phone
from tests.drills.conftest import scale
from tests.waiting import wait_for
from tools.bench._server import (
    RedisServer,
    celery_worker_command,
    database_url,
    free_port,
    start_server,
)
from tools.bench._setup import ROOT

pytestmark = [pytest.mark.drill, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


LOANS = scale(24, 400)
KILLS = scale(4, 20)


class Processes:
    """The product's processes, started with the drill's environment; their output kept.

    Workers are supervised as production's are (systemd ``Restart=always``): one that ends
    by itself (the watchdog stops a worker that stalled after a broker outage) is started
    again; one the drill kills is not."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder, self.running, self.logs = env, folder, {}, []
        self.started_at: dict[str, int] = {}
        self.workers: dict[str, list[str]] = {}
        self.restarted: Counter[str] = Counter()
        self.lock, self.done = threading.RLock(), threading.Event()
        self.supervisor = threading.Thread(target=self.supervise, daemon=True)
        self.supervisor.start()

    def supervise(self) -> None:
        while not self.done.wait(0.5):
            with self.lock:
                for name, command in self.workers.items():
                    process = self.running.get(name)
                    if process is not None and process.poll() is not None:
                        self.start(name, command)
                        self.restarted[name] += 1

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        with self.lock:
            return self._start(name, command)

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        path = self.folder / f"{name}.log"
        if path not in self.logs:
            self.logs.append(path)
        self.started_at[name] = len(path.read_text(errors="replace")) if path.exists() else 0
        with path.open("ab") as log:  # the child keeps its own descriptor
            self.running[name] = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        return self.running[name]

    def beat(self, name: str) -> subprocess.Popen:
        return self.start(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "INFO",
                "-S",
                "django_celery_beat.schedulers:DatabaseScheduler",
            ],
        )

    def sent_by_beats(self, task: str) -> dict[str, int]:
        """How many times each beat sent ``task`` (beat logs each send at INFO)."""
        return {
            p.stem: p.read_text(errors="replace").count(f"({task})")
            for p in self.logs
            if p.stem.startswith("beat")
        }

    def worker(self, name: str, queues: str) -> subprocess.Popen:
        command = celery_worker_command(name, queues=queues, loglevel="INFO")
        with self.lock:
            self.workers[name] = command
            return self.start(name, command)

    def received(self, name: str, task: str) -> bool:
        """Whether the running ``name`` worker has logged receiving ``task`` (its log is
        appended by each start: only this run's lines count)."""
        path = self.folder / f"{name}.log"
        return f"Task {task}[" in path.read_text(errors="replace")[self.started_at[name] :]

    def web(self, port: int) -> subprocess.Popen:
        """gunicorn (2 workers), once it accepts connections."""
        path = self.folder / "web.log"
        self.logs.append(path)
        with path.open("ab") as log:
            self.running["web"] = start_server(port, 2, 1, self.env, log)
        return self.running["web"]

    def kill(self, name: str) -> None:
        with self.lock:
            self.workers.pop(name, None)
            process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        self.done.set()
        self.supervisor.join()
        for process in self.running.values():
            process.send_signal(signal.SIGKILL)
            process.wait()
        self.running.clear()

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in self.logs
        )


@pytest.fixture
def late_book(lender_a):
    """Late loans, each with an enrolled phone whose FCM token names it."""
    signed_at = timezone.now() - timedelta(days=80)
    return [
        enrolled_phone(lender_a, fcm_token=f"drill-{n}", signed_at=signed_at)[0]
        for n in range(LOANS)
    ]


@pytest.fixture
def product(tmp_path, fake_fcm, late_book):
    broker = RedisServer(tmp_path, keep=True)
    broker.start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_VISIBILITY_TIMEOUT": "5",  # a killed worker's task comes back within seconds
        "FCM_CREDENTIALS_FILE": django_settings.FCM_CREDENTIALS_FILE,
        "FCM_API_BASE": django_settings.FCM_API_BASE,
        "SWEEP_RANGE_SIZE": str(max(LOANS // 8, 1)),
        "TASK_OUTBOX_GRACE_SECONDS": "1",  # the outbox relay's grace, at the drill's pace
        "WORKER_WATCHDOG_SECONDS": "5",  # a worker stalled by the outages ends at this pace
    }
    processes = Processes(env, tmp_path)
    yield broker, processes
    processes.stop_all()
    broker.stop()


def compress_the_day(lender) -> None:
    """The production schedule, with the lender's sweep firing every 2 s and the relays (pushes,
    tasks kept while the broker was down) every second; one business date throughout, so each
    firing is a beat firing again."""
    periodic_tasks_sync(lenders=lender_clock_list())
    every = {
        2: IntervalSchedule.objects.create(every=2, period="seconds"),
        1: IntervalSchedule.objects.create(every=1, period="seconds"),
    }
    PeriodicTask.objects.filter(
        task="collections.loan_stage_sweep_lender", kwargs__contains=str(lender.pk)
    ).update(crontab=None, interval=every[2])
    relays = ["devices.push_relay", "core.task_outbox_relay"]
    PeriodicTask.objects.filter(task__in=relays).update(crontab=None, interval=every[1])
    PeriodicTask.objects.exclude(task__in=["collections.loan_stage_sweep_lender", *relays]).update(
        enabled=False
    )


def test_killed_workers_a_lost_broker_and_two_beats_change_and_send_everything_once(
    lender_a, late_book, product, fake_fcm, report
) -> None:
    broker, processes = product
    compress_the_day(lender_a)
    rng = random.Random(9)
    processes.worker("steady", "push,notify,default")
    processes.beat("beat-1")
    processes.beat("beat-2")
    phones = {d.pk: d for d in late_book}
    try:
        # --- the sweep, its worker killed again and again, the broker away once ---
        kills_in_flight = kills_mid_sweep = 0
        for kill in range(KILLS):
            processes.worker("sweep", "sweep")
            if kill == 0:  # the first kill lands as the worker takes its first range: mid-sweep
                wait_for(lambda: processes.received("sweep", "collections.loan_stage_sweep_range"))
            else:
                time.sleep(rng.uniform(1.5, 3.5))
            taken = broker.unacked() > 0
            kills_in_flight += taken
            kills_mid_sweep += taken and Loan.objects.filter(lender=lender_a, stage="none").exists()
            processes.kill("sweep")
            if kill == KILLS // 2:
                broker.stop()  # beats, the steady worker and the next sweep worker lose it
                processes.worker("sweep", "sweep")
                time.sleep(3)
                broker.start()
                processes.kill("sweep")
        processes.worker("sweep", "sweep")

        def swept() -> bool:
            return Loan.objects.filter(lender=lender_a, stage="none").count() == 0

        wait_for(swept, timeout=120)
        assert kills_mid_sweep, "no kill landed mid-sweep: the redelivery was not exercised"

        # --- payments while the broker is down: the webhook answers, the outbox keeps the push
        server_port = free_port()
        processes.web(server_port)
        for _ in range(4):  # each worker's first answer loads the app: not the outage's cost
            requests.get(f"http://127.0.0.1:{server_port}/admin/login/", timeout=30)
        broker.stop()
        paying = list(Loan.objects.filter(lender=lender_a).order_by("pk"))[::2]
        answers, slowest = Counter(), 0.0
        for loan in paying:
            arrears = loan_overview(loan=loan).arrears.amount
            body = event(loan.reference, str(arrears), f"drill-{loan.pk}")
            sent = {
                k.removeprefix("HTTP_").replace("_", "-"): v
                for k, v in headers(lender_a, body).items()
            }
            started = time.monotonic()
            response = requests.post(
                f"http://127.0.0.1:{server_port}{URL}",
                data=body,
                timeout=30,
                headers={"Content-Type": "application/json", **sent},
            )
            answers[response.status_code] += 1
            slowest = max(slowest, time.monotonic() - started)
        time.sleep(2)
        broker.start()

        def delivered() -> bool:
            """Every push sent and every task the outage kept in the outbox handed over."""
            pending = PushNudge.objects.filter(lender_id=lender_a.pk).exclude(
                status__in=["sent", "superseded"]
            )
            return not pending.exists() and not TaskOutbox.objects.exists()

        try:
            wait_for(delivered, timeout=180)
            # the day is over: the beats stop, and the workers drain what they sent
            processes.kill("beat-1")
            processes.kill("beat-2")
            wait_for(lambda: broker.queued() == 0 and broker.unacked() == 0, timeout=180)
            wait_for(delivered, timeout=60)
        except AssertionError:
            left = PushNudge.objects.filter(lender_id=lender_a.pk).exclude(
                status__in=["sent", "superseded"]
            )
            print(  # noqa: T201  (what was left, on failure)
                "left:",
                list(left.values_list("device_id", "version", "status", "attempts")),
                "outbox:",
                list(TaskOutbox.objects.values_list("task", "created_at")),
                "queued:",
                broker.waiting(),
                "unacked:",
                broker.unacked(),
            )
            raise
    except BaseException:
        print(processes.tail())  # noqa: T201  (the processes' own account, on failure)
        raise

    # --- exactly once, counted from the database and from FCM ---
    changes = Counter(
        LoanStageChange.objects.filter(lender_id=lender_a.pk, cause="sweep").values_list(
            "loan_id", flat=True
        )
    )
    raised_loans = set(changes)
    assert len(raised_loans) == LOANS, "a late loan was not raised"
    assert max(changes.values()) == 1, "a loan was raised twice"
    paid = {loan.pk for loan in paying}
    assert answers == Counter({200: len(paying)}), answers
    assert Payment.objects.filter(loan_id__in=paid).count() == len(paying)
    states = Counter(
        DeviceState.objects.filter(device_id__in=phones).values_list("device_id", flat=True)
    )
    loan_of = {pk: d.loan_id for pk, d in phones.items()}
    expected = {pk: 1 + 1 + (loan_of[pk] in paid) for pk in phones}  # enrolled, raised, lifted
    assert dict(states) == expected, "a phone was given a state twice, or none"
    versions = Counter(
        PushNudge.objects.filter(device_id__in=phones, version__gt=1).values_list(
            "device_id", "version"
        )
    )
    assert max(versions.values()) == 1, "a state was queued for push twice"
    delivered = Counter((m["token"], m["data"]["version"]) for m in fake_fcm.delivered)
    assert max(delivered.values()) == 1, "FCM was asked twice for one state"
    unlocked = {int(token.removeprefix("drill-")) for token, version in delivered if version == "3"}
    assert len(unlocked) == len(paying), "a payment's unlock never reached FCM"
    newest = {(f"drill-{n}", str(expected[d.pk])) for n, d in enumerate(late_book)}
    assert newest <= set(delivered), "a phone's newest state was never pushed"
    notices = Counter(
        Notification.objects.filter(lender=lender_a, kind="overdue").values_list(
            "loan_id", flat=True
        )
    )
    # a loan paid before its range's notices went out gets none, by design
    assert raised_loans - paid <= set(notices) <= raised_loans, "an overdue notice was lost"
    assert max(notices.values()) == 1
    receipts = Counter(
        Notification.objects.filter(lender=lender_a, kind="payment").values_list(
            "loan_id", flat=True
        )
    )
    assert set(receipts) == paid, "a payment's receipt was lost while the broker was down"
    assert max(receipts.values()) == 1
    fired = processes.sent_by_beats("collections.loan_stage_sweep_lender")
    assert all(fired.values()), f"a beat never fired: {fired}"
    report(
        f"worker faults: {LOANS} late loans; sweep worker SIGKILLed {KILLS} times "
        f"({kills_in_flight} with a task taken and unacknowledged, {kills_mid_sweep} of them before every "
        f"loan was raised), the broker down 3 s during the sweep and "
        f"during {len(paying)} payments (answered {dict(answers)}, the slowest in "
        f"{slowest * 1000:.0f} ms); two beats fired the sweep "
        f"{' + '.join(str(n) for n in fired.values())} times on one business date: {len(raised_loans)} stage changes, "
        f"{sum(states.values())} phone states, {sum(delivered.values())} FCM sends, "
        f"{sum(notices.values())} overdue notices, {sum(receipts.values())} receipts, each exactly once; "
        f"workers stalled and started again by their supervisor: {dict(processes.restarted) or 0}"
    )
