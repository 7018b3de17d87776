"""bench-load: a mixed loopback load on gunicorn, a Celery worker and PostgreSQL (drill 8).

Seeds, in the dedicated database ``smartcollection_bench_load``, a lender
with enrolled phones (set-based, as bench-agent does), loans signed through
the real services with a customer each (as bench-payments does), a shop and
one clerk per client. Then starts, on loopback, the product as production
runs it: gunicorn (``--workers`` sync workers, default 2), a Celery worker
(``-P solo``, all queues, with ``CELERY_TASK_ALWAYS_EAGER`` off, so a request
pays for enqueuing its tasks, not for running them) and a Redis of the run's
own as its broker. ``--clients`` threads (default 8) each draw their next
request from a fixed mix until ``--seconds`` have passed or ``--requests``
have been sent, whichever comes first:

* agent check-ins (the bulk): a phone's own credentials and the version it
  acknowledged, phones taken in turn so that each checks in evenly;
* signed payment webhooks: half pay one installment of a loan (a new event),
  half are the provider's redelivery of an event this client sent before
  (answered ``duplicate``, nothing paid twice);
* POS enrollments: the client's clerk logs in once, then enters sales through
  the real forms (CSRF tokens read from each page): start, customer, phone,
  plan, the consent code (read from the fake SMS gateway's spool file),
  sign, and the QR code shown, then one poll of the phone's status;
* customer page views: the client's customer logs in once by SMS code, then
  views the home page and, twice as often, the status JSON the page polls.

Every request is timed. An error is any answer but the one expected (a
status, and for the QR, the status JSON and the webhooks, the content), any
connection failure, and any line a server process logs at ERROR or above.
The throttles are production's (``AGENT_API_THROTTLE`` 120/min per phone,
``PAYMENTS_WEBHOOK_THROTTLE`` 6000/min per address, 200 customer login tries
per address and 10 per number in 15 minutes): the load is shaped to fit
them, so a 429 is an error. At the end the tasks the run queued are waited
for (at most 60 s), and the payments stored must equal the paying events
sent.

Prints per endpoint count, errors, p50/p95/p99 (ms); total throughput; peak
memory (high-water RSS) of this process, of each gunicorn and Celery
process; and the command that reproduces the run. Exits 1 on any error.

    make bench-load                # D=30 seconds, N=20000 requests at most
    make bench-load D=120 N=100000

``tests/drills/test_load_drill.py`` runs the same load against the test
database (10 s in ``make test``, 60 s in ``make drills``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tools.bench._seed import (
    device_secret,
    enrolled_seed,
    lender_seed,
    loans_seed,
    template_loan_seed,
)
from tools.bench._server import (
    RedisServer,
    celery_worker_command,
    cpu_seconds,
    free_port,
    process_peak_rss_mib,
    read_response,
    server_pids,
    start_server,
)
from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib, percentile

DATABASE = "smartcollection_bench_load"
SLUG = "bench-load"
CLERK_PASSWORD = "counter-staff-passphrase-8"  # noqa: S105  (a bench clerk's, on loopback)
CUSTOMER_TAG, CUSTOMER_PHONES = "93", 10_000_000  # national ids 93<n:06d>, phones 0710000000 + n
# Requests in a hundred. A sale is 16 requests and a login 4, so a client is never idle.
MIX = {"checkin": 64, "webhook": 12, "pos": 14, "customer": 10}
NEW_PAYMENT_SHARE = 0.5  # of the webhooks; the others redeliver an event sent before
TASK_DRAIN_SECONDS = 60
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
LOGGED_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


# --- seeding -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the clients need to know of the seeded data."""

    slug: str
    lender_id: int
    product_id: int
    webhook_secret: str
    phones: list[tuple[int, str, int]]  # device id, secret, version acknowledged
    payments: list[tuple[str, str]]  # loan reference, amount: each pays one installment
    customers: list[str]  # one customer's phone number per client
    clerks: list[str]  # one clerk's username per client (password CLERK_PASSWORD)
    run_id: str


def _payable(lender: Any) -> list[tuple[str, str]]:
    """One (reference, amount) per open installment of the seeded customers' active loans,
    but each loan's last (so the load never closes a loan), taken loan by loan in turn."""
    from apps.collections.models import Installment

    rows = (
        Installment.objects.filter(
            loan__lender=lender,
            loan__status="active",
            paid_at__isnull=True,
            loan__customer__national_id__regex=rf"^{CUSTOMER_TAG}[0-9]{{6}}$",
        )
        .order_by("loan_id", "sequence")
        .values_list(
            "loan__reference",
            "principal_amount",
            "interest_amount",
            "fee_amount",
            "late_fee_amount",
            "principal_paid",
            "interest_paid",
            "fee_paid",
            "late_fee_paid",
        )
    )
    by_loan: dict[str, list[str]] = defaultdict(list)
    for reference, *parts in rows:
        due = sum(parts[:4], Decimal(0)) - sum(parts[4:], Decimal(0))
        by_loan[reference].append(str(due.quantize(Decimal("0.01"))))
    queues = [[(ref, amount) for amount in amounts[:-1]] for ref, amounts in by_loan.items()]
    return [row for turn in itertools.zip_longest(*queues) for row in turn if row]


def seed(*, phones: int, loans: int, clients: int, requests: int) -> Plan:
    """Seed (or top up) the load's lender and return the plan of a run.

    Enough loans for the paying webhooks ``requests`` could carry are added when
    earlier runs paid the others; each client's customer is one with no login
    code sent in the last 15 minutes (three codes in that window are the most).
    """
    from django.utils import timezone

    from apps.core.actor import Actor
    from apps.customers.models import Customer
    from apps.customers.services import LOGIN_WINDOW
    from apps.devices.models import Device
    from apps.integrations.payments.signing import webhook_secret_for
    from apps.lenders.models import LoanProduct
    from apps.retailers.models import Clerk
    from apps.retailers.services import clerk_create, demo_counter

    lender = lender_seed(slug=SLUG, name="Bench load")
    # first, so that the template (the lender's first loan) is not a customer's who logs in
    template = template_loan_seed(lender)
    enrolled_seed(lender=lender, template=template, devices=phones)
    paying = int(requests * MIX["webhook"] / 100 * NEW_PAYMENT_SHARE) + clients
    loans_seed(lender=lender, loans=loans, tag=CUSTOMER_TAG, phone_offset=CUSTOMER_PHONES)
    payments = _payable(lender)
    if len(payments) < paying:  # earlier runs paid them: 10 more installments per new loan
        seeded = Customer.objects.filter(
            lender=lender, national_id__regex=rf"^{CUSTOMER_TAG}[0-9]{{6}}$"
        )
        more = (paying - len(payments)) // 10 + 1
        loans_seed(
            lender=lender,
            loans=seeded.count() + more,
            tag=CUSTOMER_TAG,
            phone_offset=CUSTOMER_PHONES,
        )
        payments = _payable(lender)
    shop, _ = demo_counter(lender)
    clerks = [f"load-clerk-{n}" for n in range(clients)]
    for username in clerks:
        if not Clerk.objects.filter(user__username=username).exists():
            clerk_create(
                shop=shop, username=username, password=CLERK_PASSWORD, actor=Actor.system()
            )
    recent = timezone.now() - LOGIN_WINDOW
    customers = list(
        Customer.objects.filter(lender=lender, national_id__regex=rf"^{CUSTOMER_TAG}[0-9]{{6}}$")
        .exclude(login_codes__created_at__gte=recent)
        .order_by("pk")
        .values_list("phone", flat=True)[:clients]
    )
    if len(customers) < clients:
        raise SystemExit(
            f"only {len(customers)} customers without a recent login code: --loans more"
        )
    enrolled = Device.objects.filter(
        lender=lender, status=Device.Status.ENROLLED, imei__startswith="35"
    ).order_by("pk")
    return Plan(
        slug=lender.slug,
        lender_id=lender.pk,
        product_id=LoanProduct.objects.filter(lender=lender)
        .order_by("pk")
        .values_list("pk", flat=True)[0],
        webhook_secret=webhook_secret_for(lender_slug=lender.slug, provider="demo"),
        phones=[
            (pk, device_secret(imei), version)
            for pk, imei, version in enrolled.values_list("pk", "imei", "acked_version")[:phones]
        ],
        payments=payments,
        customers=customers,
        clerks=clerks,
        run_id=f"{time.time_ns():x}",
    )


# --- the product's processes -----------------------------------------------------------


class Product:
    """A Redis broker of the run's own, a Celery worker and gunicorn, on loopback."""

    def __init__(self, *, folder: Path, env: dict[str, str], workers: int) -> None:
        self.folder, self.workers = folder, workers
        self.broker, self.port = RedisServer(folder), free_port()
        self.spool = folder / "sms.jsonl"
        self.spool.touch()
        self.env = {
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DJANGO_LOG_LEVEL": "WARNING",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_BROKER_URL": self.broker.url,
            "FAKE_SMS_SPOOL": str(self.spool),
        }
        self.env.setdefault("DJANGO_CONN_MAX_AGE", "60")  # production's default
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[Path] = [folder / "redis.log"]

    def _log(self, name: str) -> Any:
        path = self.folder / f"{name}.log"
        self.logs.append(path)
        return path.open("ab")

    def __enter__(self) -> Product:
        try:
            self.broker.start()
            with self._log("celery") as log:
                self.processes["celery"] = subprocess.Popen(
                    celery_worker_command("load"), cwd=ROOT, env=self.env, stdout=log, stderr=log
                )
            with self._log("gunicorn") as log:
                self.processes["gunicorn"] = start_server(self.port, self.workers, 1, self.env, log)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for name in ("gunicorn", "celery"):
            process = self.processes.pop(name, None)
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.broker.stop()

    def tasks_pending(self) -> int:
        return self.broker.queued() + self.broker.unacked()

    def peak_rss_mib(self) -> dict[str, float]:
        """High-water RSS (VmHWM) of each of the product's processes, by role."""
        import psutil

        gunicorn = psutil.Process(self.processes["gunicorn"].pid)
        peaks = {"gunicorn master": process_peak_rss_mib(gunicorn.pid)}
        for n, worker in enumerate(gunicorn.children(), start=1):
            peaks[f"gunicorn worker {n}"] = process_peak_rss_mib(worker.pid)
        peaks["celery worker"] = process_peak_rss_mib(self.processes["celery"].pid)
        return peaks

    def logged_errors(self) -> list[str]:
        lines = []
        for path in self.logs:
            text = path.read_text(errors="replace") if path.exists() else ""
            lines += [
                f"{path.stem}: {line}" for line in text.splitlines() if LOGGED_ERROR.search(line)
            ]
        return lines

    def tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs
        )


@contextmanager
def product_running(*, env: dict[str, str], workers: int) -> Iterator[Product]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as folder,
        Product(folder=Path(folder), env=env, workers=workers) as product,
    ):
        yield product


# --- the clients ---------------------------------------------------------------------


class Stop(Exception):
    """The time or the request budget is spent."""


class Failed(Exception):
    """A request got an answer it should not have (already counted as an error)."""


class SmsSpool:
    """The fake SMS gateway's messages, as the product's processes append them."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.lock = path, 0, threading.Lock()
        self.by_number: dict[str, list[str]] = defaultdict(list)

    def code_for(self, number: str, *, after: int, timeout: float = 10) -> str:
        """The 6-digit code in the first message to ``number`` (last 9 digits) past the
        ``after`` first ones."""
        key, deadline = number[-9:], time.monotonic() + timeout
        while True:
            with self.lock:
                with self.path.open("rb") as spool:
                    spool.seek(self.offset)
                    data = spool.read()
                complete = data[: data.rfind(b"\n") + 1]
                self.offset += len(complete)
                for line in complete.splitlines():
                    message = json.loads(line)
                    self.by_number[message["to"][-9:]].append(message["body"])
                messages = self.by_number[key][after:]
            if messages:
                return re.search(r"\b(\d{6})\b", messages[0]).group(1)  # type: ignore[union-attr]  # our messages carry one
            if time.monotonic() > deadline:
                raise LookupError(f"no SMS to ...{number[-4:]}")
            time.sleep(0.02)

    def count(self, number: str) -> int:
        with self.lock:
            return len(self.by_number[number[-9:]])


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    enrollments: int = 0  # sales that reached the QR code
    paying_events: int = 0
    redeliveries: int = 0
    checkins_by_phone: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def merge(self, other: Results) -> None:
        for label, values in other.latencies.items():
            self.latencies[label].extend(values)
        for label, values in other.errors.items():
            self.errors[label].extend(values)
        self.enrollments += other.enrollments
        self.paying_events += other.paying_events
        self.redeliveries += other.redeliveries
        for phone, count in other.checkins_by_phone.items():
            self.checkins_by_phone[phone] += count


class Budget:
    """Requests left: none after the deadline or the N-th request."""

    def __init__(self, *, seconds: float, requests: int) -> None:
        self.deadline, self.limit, self.count = (
            time.monotonic() + seconds,
            requests,
            itertools.count(),
        )

    def take(self) -> None:
        if time.monotonic() >= self.deadline or next(self.count) >= self.limit:
            raise Stop


def _token(body: bytes) -> str:
    found = CSRF.search(body)
    if found is None:
        raise LookupError("no CSRF token on the page")
    return found.group(1).decode()


class Client:
    """One client thread: its own phones, events, clerk and customer, and a sale in progress."""

    def __init__(
        self, n: int, *, plan: Plan, port: int, clients: int, budget: Budget, spool: SmsSpool
    ) -> None:
        import requests

        self.n, self.plan, self.port, self.budget, self.spool = n, plan, port, budget, spool
        self.base = f"http://127.0.0.1:{port}"
        self.rng = random.Random(n)  # noqa: S311  (the mix, not a secret)
        self.results = Results()
        self.phones = itertools.cycle(plan.phones[n::clients] or plan.phones)
        self.payments = iter(plan.payments[n::clients])
        self.sent: list[bytes] = []  # webhook bodies sent, to redeliver
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.clerk, self.customer = requests.Session(), requests.Session()
        self.clerk_in = self.customer_in = False
        self.sales = 0
        self.sale: Iterator[None] | None = None
        self.login: Iterator[None] | None = None
        self.customer_phone, self.clerk_name = plan.customers[n], plan.clerks[n]

    # -- recording

    def _time(self, label: str, started: float) -> None:
        self.results.latencies[label].append((time.perf_counter() - started) * 1000)

    def _error(self, label: str, detail: str) -> None:
        self.results.errors[label].append(detail)
        raise Failed(detail)

    # -- the agent API and the webhook: raw HTTP/1.1 on a kept-alive socket

    def _raw(self, label: str, request: bytes) -> tuple[int, bytes]:
        self.budget.take()
        started = time.perf_counter()
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(request)
            status, body, self.buffer, keep_alive = read_response(self.sock, self.buffer)
        except OSError as exc:
            self._close()
            self._time(label, started)
            self._error(label, repr(exc))
        self._time(label, started)
        if not keep_alive:
            self._close()
        return status, body

    def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _post_json(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n"
        ).encode() + body

    def checkin(self) -> None:
        device_id, secret, version = next(self.phones)
        body = json.dumps({"version": version, "agent_version": "1.0", "battery": 80}).encode()
        label = "POST /api/agent/v1/check-in"
        status, answer = self._raw(
            label,
            self._post_json(
                "/api/agent/v1/check-in", body, {"Authorization": f"Device {device_id}:{secret}"}
            ),
        )
        self.results.checkins_by_phone[device_id] += 1
        if status != 200 or not answer.startswith(b'{"state":'):
            self._error(label, f"{status} {answer[:200]!r}")

    def webhook(self) -> None:
        from apps.integrations.payments.signing import sign

        new = self.rng.random() < NEW_PAYMENT_SHARE or not self.sent
        payment = next(self.payments, None) if new else None
        if payment is None:
            if not self.sent:
                return self.checkin()  # nothing left to pay, nothing sent yet
            body, expected = self.rng.choice(self.sent), b'"duplicate"'
        else:
            number = len(self.sent)
            reference, amount = payment
            body = json.dumps(
                {
                    "id": f"evt-{self.plan.run_id}-{self.n}-{number}",
                    "type": "payment.succeeded",
                    "data": {
                        "loan": reference,
                        "amount": amount,
                        "currency": "KES",
                        "reference": f"MP-{self.plan.run_id}-{self.n}-{number}",
                    },
                }
            ).encode()
            expected = b'"applied"'
        label = "POST /api/payments/v1/webhooks/demo/"
        headers = {
            "X-Lender": self.plan.slug,
            "X-Signature": sign(secret=self.plan.webhook_secret, body=body),
        }
        status, answer = self._raw(
            label, self._post_json("/api/payments/v1/webhooks/demo/", body, headers)
        )
        if status != 200 or expected not in answer:
            self._error(label, f"{status} {answer[:200]!r}")
        if payment is None:
            self.results.redeliveries += 1
        else:
            self.sent.append(body)
            self.results.paying_events += 1
        return None

    # -- the pages: a browser's session (cookies), redirects read one at a time

    def _page(
        self,
        session: Any,
        method: str,
        path: str,
        label: str,
        *,
        expect: int,
        data: dict[str, Any] | None = None,
        check: Callable[[Any], bool] | None = None,
    ) -> Any:
        import requests

        self.budget.take()
        started = time.perf_counter()
        try:
            answer = session.request(
                method, self.base + path, data=data, allow_redirects=False, timeout=30
            )
        except requests.RequestException as exc:
            self._time(label, started)
            self._error(label, repr(exc))
        self._time(label, started)
        if answer.status_code != expect or (check is not None and not check(answer)):
            where = answer.headers.get("Location", "")
            self._error(label, f"{answer.status_code} {where} {answer.content[:200]!r}")
        return answer

    def _form(
        self,
        session: Any,
        path: str,
        label: str,
        data: dict[str, Any],
        *,
        expect: int = 302,
        token: str,
        check: Callable[[Any], bool] | None = None,
    ) -> Any:
        return self._page(
            session,
            "POST",
            path,
            f"POST {label}",
            expect=expect,
            check=check,
            data={"csrfmiddlewaretoken": token, **data},
        )

    def _sale(self) -> Iterator[None]:
        """One sale at the counter, a request per step (the clerk logs in once)."""
        clerk = self.clerk
        if not self.clerk_in:
            page = self._page(clerk, "GET", "/pos/login/", "GET /pos/login/", expect=200)
            yield
            self._form(
                clerk,
                "/pos/login/",
                "/pos/login/",
                token=_token(page.content),
                data={"username": self.clerk_name, "password": CLERK_PASSWORD},
            )
            self.clerk_in = True
            yield
        self.sales += 1
        serial = f"{self.n:02d}{self.sales % 10**4:04d}"  # unique among this run's sales
        page = self._page(clerk, "GET", "/pos/", "GET /pos/", expect=200)
        yield
        answer = self._form(
            clerk,
            "/pos/",
            "/pos/",
            token=_token(page.content),
            data={"lender": self.plan.lender_id},
        )
        sale = answer.headers["Location"].removesuffix("customer/")  # /pos/sales/<id>/
        yield
        # a number is one customer's at the lender: a later run's sale with this serial is
        # the same customer coming back for another phone
        number = f"0712{serial}"
        steps = [
            (
                "customer/",
                {
                    "full_name": f"Load Customer {serial}",
                    "phone": number,
                    "national_id": f"96{serial}",
                },
            ),
            (
                "phone/",
                {
                    "imei": _imei(self.plan.run_id, serial),
                    "brand": "Tecno",
                    "model_name": "Spark 20",
                    "price": "24000",
                },
            ),
            ("plan/", {"product": self.plan.product_id, "down_payment": "4000"}),
        ]
        for step, data in steps:
            page = self._page(clerk, "GET", sale + step, f"GET /pos/sales/<id>/{step}", expect=200)
            yield
            self._form(
                clerk, sale + step, f"/pos/sales/<id>/{step}", data, token=_token(page.content)
            )
            yield
        consent = f"{sale}consent/"
        page = self._page(clerk, "GET", consent, "GET /pos/sales/<id>/consent/", expect=200)
        yield
        before = self.spool.count(number)
        page = self._form(
            clerk,
            consent,
            "/pos/sales/<id>/consent/ (send code)",
            {"action": "send"},
            expect=200,
            token=_token(page.content),
            check=lambda a: b"confirm-code" in a.content,
        )
        yield
        code = self._code(number, before, "POST /pos/sales/<id>/consent/ (confirm)")
        self._form(
            clerk,
            consent,
            "/pos/sales/<id>/consent/ (confirm)",
            {"action": "confirm", "code": code},
            token=_token(page.content),
        )
        yield
        page = self._page(clerk, "GET", f"{sale}sign/", "GET /pos/sales/<id>/sign/", expect=200)
        yield
        self._form(clerk, f"{sale}sign/", "/pos/sales/<id>/sign/", {}, token=_token(page.content))
        yield
        # the page shows the QR code on opening, as the clerk sees it: no tap, one code
        self._page(
            clerk,
            "GET",
            f"{sale}provision/",
            "GET /pos/sales/<id>/provision/",
            expect=200,
            check=lambda a: b'id="provisioning-qr"' in a.content,
        )
        self.results.enrollments += 1
        yield
        self._page(
            clerk,
            "GET",
            f"{sale}status/",
            "GET /pos/sales/<id>/status/",
            expect=200,
            check=lambda a: a.json() == {"device": "pending"},
        )

    def _code(self, number: str, before: int, label: str) -> str:
        try:
            return self.spool.code_for(number, after=before)
        except LookupError as exc:
            self._error(label, str(exc))
            raise  # not reached: _error raises

    def _step(self, flow: str, start: Callable[[], Iterator[None]]) -> None:
        """One request of a multi-request flow (a sale, a login) kept in attribute ``flow``;
        when it ends or fails, the next call starts it again."""
        if getattr(self, flow) is None:
            setattr(self, flow, start())
        try:
            next(getattr(self, flow))
        except StopIteration:
            setattr(self, flow, None)
        except Failed:
            setattr(self, flow, None)
            raise

    def pos(self) -> None:
        self._step("sale", self._sale)

    def _customer_login(self) -> Iterator[None]:
        slug, session, phone = self.plan.slug, self.customer, self.customer_phone
        page = self._page(
            session, "GET", f"/my/{slug}/login/", "GET /my/<lender>/login/", expect=200
        )
        yield
        before = self.spool.count(phone)
        self._form(
            session,
            f"/my/{slug}/login/",
            "/my/<lender>/login/",
            {"phone": phone},
            token=_token(page.content),
        )
        yield
        page = self._page(
            session, "GET", f"/my/{slug}/login/code/", "GET /my/<lender>/login/code/", expect=200
        )
        yield
        code = self._code(phone, before, "POST /my/<lender>/login/code/")
        self._form(
            session,
            f"/my/{slug}/login/code/",
            "/my/<lender>/login/code/",
            {"code": code},
            token=_token(page.content),
        )
        self.customer_in = True

    def customer_view(self) -> None:
        if not self.customer_in:
            self._step("login", self._customer_login)
            return
        slug = self.plan.slug
        if self.rng.random() < 1 / 3:
            self._page(
                self.customer,
                "GET",
                f"/my/{slug}/",
                "GET /my/<lender>/",
                expect=200,
                check=lambda a: b"schedule" in a.content,
            )
        else:
            self._page(
                self.customer,
                "GET",
                f"/my/{slug}/status/",
                "GET /my/<lender>/status/",
                expect=200,
                check=lambda a: len(a.json()["loans"]) == 1,
            )

    def run(self) -> None:
        actions = {
            "checkin": self.checkin,
            "webhook": self.webhook,
            "pos": self.pos,
            "customer": self.customer_view,
        }
        kinds, weights = list(MIX), list(MIX.values())
        try:
            while True:
                try:
                    actions[self.rng.choices(kinds, weights)[0]]()
                except Failed:
                    continue
        except Stop:
            pass
        except Exception as exc:  # an answer the client could not read ends it: an error too
            self._error("client crashed", f"{type(exc).__name__}: {exc}")
        finally:
            self.close()

    def close(self) -> None:
        self._close()
        self.clerk.close()
        self.customer.close()


def _imei(run_id: str, serial: str) -> str:
    """A 15-digit IMEI with its Luhn digit, unique to this run and sale."""
    from stdnum import luhn

    body = f"86{int(run_id, 16) % 10**6:06d}{serial}"
    return body + luhn.calc_check_digit(body)


# --- the run -------------------------------------------------------------------------


@dataclass
class Figures:
    results: Results
    elapsed: float
    sent: int
    payments_stored: int
    tasks_left: int
    drained_in: float
    logged_errors: list[str]
    peaks: dict[str, float]
    load_peak: float
    app_cpu: float  # CPU seconds of gunicorn and the Celery worker during the load
    own_cpu: float  # and of this process

    @property
    def errors(self) -> int:
        return (
            sum(len(v) for v in self.results.errors.values())
            + len(self.logged_errors)
            + (self.payments_stored != self.results.paying_events)
            + (self.tasks_left > 0)
        )


def warm_up(*, plan: Plan, product: Product, spool: SmsSpool) -> None:
    """Not measured: each worker's first requests import and set up what it serves (as a
    long-lived production worker has long done). The login pages and check-ins, from as
    many connections as there are workers, a few times each; errors here fail the run too."""
    budget = Budget(seconds=60, requests=10**6)
    clients = [
        Client(
            n, plan=plan, port=product.port, clients=len(plan.clerks), budget=budget, spool=spool
        )
        for n in range(product.workers)
    ]

    def warm(client: Client) -> None:
        try:
            for _ in range(10):
                client.checkin()
                client._page(client.clerk, "GET", "/pos/login/", "warm-up", expect=200)
                client._page(
                    client.customer, "GET", f"/my/{plan.slug}/login/", "warm-up", expect=200
                )
        except Failed:
            pass  # counted, and reported below
        finally:
            client.close()

    threads = [threading.Thread(target=warm, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [e for c in clients for values in c.results.errors.values() for e in values]
    if errors or any(not c.results.latencies for c in clients):
        raise RuntimeError(f"the warm-up failed: {errors[:1]}")


def run(*, plan: Plan, product: Product, seconds: float, requests: int, clients: int) -> Figures:
    """The load: ``clients`` threads until ``seconds`` pass or ``requests`` are sent."""
    from apps.collections.models import Payment

    spool = SmsSpool(product.spool)
    warm_up(plan=plan, product=product, spool=spool)
    budget = Budget(seconds=seconds, requests=requests)
    workers = [
        Client(n, plan=plan, port=product.port, clients=clients, budget=budget, spool=spool)
        for n in range(clients)
    ]
    threads = [threading.Thread(target=w.run, name=f"load-{w.n}") for w in workers]
    app = [*server_pids(product.processes["gunicorn"]), product.processes["celery"].pid]
    app_before, own_before = cpu_seconds(app), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    app_cpu = sum(cpu_seconds(app).values()) - sum(app_before.values())
    own_cpu = time.process_time() - own_before
    results = Results()
    for worker in workers:
        results.merge(worker.results)
    drain = time.perf_counter()
    while (left := product.tasks_pending()) and time.perf_counter() - drain < TASK_DRAIN_SECONDS:
        time.sleep(0.2)
    drained_in = time.perf_counter() - drain
    stored = Payment.objects.filter(
        lender_id=plan.lender_id, provider_ref__startswith=f"MP-{plan.run_id}-"
    ).count()
    return Figures(
        results=results,
        elapsed=elapsed,
        sent=sum(len(v) for v in results.latencies.values()),
        payments_stored=stored,
        tasks_left=left,
        drained_in=drained_in,
        logged_errors=product.logged_errors(),
        peaks=product.peak_rss_mib(),
        load_peak=peak_rss_mib(),
        app_cpu=app_cpu,
        own_cpu=own_cpu,
    )


ORDER = ["POST /api/agent/v1/check-in", "POST /api/payments/v1/webhooks/demo/"]


def report_lines(
    figures: Figures, *, command: str, seconds: float, requests: int, clients: int, workers: int
) -> list[str]:
    r = figures.results
    labels = sorted(
        r.latencies.keys() | r.errors.keys(),
        key=lambda k: (
            ORDER.index(k) if k in ORDER else len(ORDER),
            not k.startswith("GET /pos"),
            k,
        ),
    )
    # ms
    lines = [
        f"load: {figures.sent} requests in {figures.elapsed:.1f} s ({figures.sent / figures.elapsed:.1f}/s) "
        f"from {clients} clients (bounds: {seconds:g} s, {requests} requests), gunicorn {workers} sync workers, "
        f"a Celery worker on Redis, PostgreSQL; errors {figures.errors}",
        f"  {'endpoint':<48} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}",
    ]
    for label in labels:
        lat = sorted(r.latencies.get(label, []))
        p = [f"{percentile(lat, q):8.1f}" for q in (50, 95, 99)]
        lines.append(f"  {label:<48} {len(lat):>6} {len(r.errors.get(label, [])):>6} {' '.join(p)}")
    busiest = max(r.checkins_by_phone.values(), default=0) * 60 / figures.elapsed
    login_tries = sum(
        len(r.latencies.get(f"POST /my/<lender>/{step}", [])) for step in ("login/", "login/code/")
    )
    lines += [
        f"  POS sales to the QR code {r.enrollments}; webhooks: {r.paying_events} paid an installment "
        f"({figures.payments_stored} payments stored), {r.redeliveries} redeliveries answered duplicate",
        f"  throttles as in production: busiest phone {busiest:.0f} check-ins/min (limit 120/min), "
        f"webhooks {(r.paying_events + r.redeliveries) * 60 / figures.elapsed:.0f}/min "
        f"(limit 6000/min), {login_tries} customer login tries (limit 200 per address and "
        "10 per number in 15 min)",
        f"  cpu: app (gunicorn, celery) {figures.app_cpu / figures.elapsed:.2f} cores, load generator "
        f"{figures.own_cpu / figures.elapsed:.2f} cores, of {os.cpu_count()}",
        f"  tasks: queue empty {figures.drained_in:.1f} s after the load ({figures.tasks_left} left); "
        f"lines logged at ERROR or above: {len(figures.logged_errors)}",
        "  peak memory (high-water RSS): load process (its seeding included) "
        f"{figures.load_peak:.0f} MiB, "
        + ", ".join(f"{k} {v:.0f} MiB" for k, v in figures.peaks.items()),
        f"  command: {command}",
    ]
    for label, errors in r.errors.items():
        lines.append(f"  first error of {label}: {errors[0][:300]}")
    lines += [f"  logged: {line[:300]}" for line in figures.logged_errors[:5]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--phones", type=int, default=2000)
    parser.add_argument("--loans", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")  # seeding runs tasks eagerly here
    django_on_bench_database(DATABASE)
    plan = seed(phones=args.phones, loans=args.loans, clients=args.clients, requests=args.requests)
    from django.db import connection

    connection.close()  # not held idle through the run
    with product_running(env=dict(os.environ), workers=args.workers) as product:
        try:
            figures = run(
                plan=plan,
                product=product,
                seconds=args.seconds,
                requests=args.requests,
                clients=args.clients,
            )
        except BaseException:
            print(product.tail())
            raise
    explicit = [
        f"--{k}={v:g}" if isinstance(v, float) else f"--{k}={v}" for k, v in vars(args).items()
    ]
    command = (
        f"make bench-load D={args.seconds:g} N={args.requests}   "
        f"(.venv/bin/python -m tools.bench.load {shlex.join(explicit)})"
    )
    for line in report_lines(
        figures,
        command=command,
        seconds=args.seconds,
        requests=args.requests,
        clients=args.clients,
        workers=args.workers,
    ):
        print(line)
    if figures.errors:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
