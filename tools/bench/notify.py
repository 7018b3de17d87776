"""bench-notify: due reminders sent by one notify worker, and delivery reports taken by the app.

Seeds a lender (its contact window open now: the bench moves it to a country and time zone
where it is) with its own Africa's Talking account, ``--loans`` loans, and ``--messages``
reminders due now (one insert: queuing them through the product would measure the queuing,
``notifications_queue``, which the sweep benchmark covers). Then:

1. **Dispatch.** One Celery worker of the ``notify`` queue (the production command, one
   process) on a Redis broker of the run's own is sent the dispatch task once, as beat
   sends it; the task sends batch after batch through the official Africa's Talking client
   to a loopback fake of its API, handing on to a fresh run of itself every
   ``DISPATCH_RUN_SECONDS``. The clock runs until every reminder is with the provider.
   Printed: messages per second, the worker's CPU per message and messages per worker core,
   the fake's CPU (in this process), PostgreSQL's, and the worker's peak memory. Every
   reminder must be sent exactly once (the fake counts) and none held (the window is open).
2. **Delivery reports.** ``--reports`` of those messages are reported delivered, as Africa's
   Talking posts its reports (a form on the lender's secret path), to gunicorn (2 sync
   workers) from ``--concurrency`` keep-alive connections. Printed: reports per second per
   app core (the CPU gunicorn used), p50/p95/p99, and that each moved its message.

    make bench-notify                 # 100,000 reminders, 20,000 reports
    make bench-notify N=20000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from tools.bench._providers import Post
from tools.bench._seed import lender_seed, loans_seed
from tools.bench._server import (
    DatabaseCpu,
    RedisServer,
    celery_worker_command,
    cpu_seconds,
    free_port,
    post_all,
    run_broker,
    server_pids,
    start_server,
    worker_rss_mib,
    worker_run,
)
from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib, percentile

SLUG = "bench-notify"
AT_USERNAME, AT_KEY = "bench-notify", "atsk_" + "bench" * 8
# countries whose contact window (apps.lenders.country_rules) the bench may move the lender
# to, so that it is open whenever the bench runs
PLACES = [
    ("KE", "Africa/Nairobi"),
    ("MX", "America/Mexico_City"),
    ("PH", "Asia/Manila"),
    ("CO", "America/Bogota"),
    ("IN", "Asia/Kolkata"),
]


def lender_in_hours() -> tuple[Any, datetime | None]:
    """The bench lender, in a country whose contact window is open now and for the next
    hour, with its Africa's Talking account in use; and None, or (on a day when no window
    of the bench's countries is open: a Sunday) the next weekday morning in Kenya, where the
    worker's clock is moved to (tools/bench/_at_time.py)."""
    from datetime import timedelta

    from apps.core.actor import Actor
    from apps.integrations.services import provider_account_save
    from apps.lenders.models import Lender
    from apps.notifications.rules import contact_slot

    lender = lender_seed(slug=SLUG, name="Bench notify")
    now, at = datetime.now(UTC), None
    for country, tz in PLACES:
        later = now + timedelta(hours=1)
        if contact_slot(country=country, tz=tz, at=now) == now and (
            contact_slot(country=country, tz=tz, at=later) == later
        ):
            break
    else:
        country, tz = PLACES[0]
        at = contact_slot(country=country, tz=tz, at=now) + timedelta(hours=3)
    Lender.objects.filter(pk=lender.pk).update(country=country, timezone=tz)
    provider_account_save(
        lender_id=lender.pk,
        provider="africastalking",
        enabled=True,
        settings={"username": AT_USERNAME, "sender_id": ""},
        secrets={"api_key": AT_KEY},
        actor=Actor.system(),
    )
    return Lender.objects.get(pk=lender.pk), at


REMINDERS = """
INSERT INTO notifications_notification
    (lender_id, customer_id, loan_id, kind, status, locale, body, dedupe_key, scheduled_for,
     channel, first_channel, fell_back_from, provider, provider_ref, delivery, error,
     announces_stage, created_at, updated_at)
SELECT %(lender)s, l.customer_id, l.id, 'due_soon', 'scheduled', 'en',
       'Reminder ' || n || ': your installment of KES 1,650.00 is due on 5 Jan. '
       || 'Pay with M-Pesa, paybill 600984, account ' || l.reference || '.',
       %(run)s || ':' || n, now(), '', '', '', '', '', '', '', '', now(), now()
FROM generate_series(1, %(messages)s) AS n
JOIN LATERAL (
    SELECT id, customer_id, reference FROM collections_loan
    WHERE lender_id = %(lender)s ORDER BY id OFFSET (n %% %(loans)s) LIMIT 1
) AS l ON true
"""


def reminders_seed(*, lender: Any, messages: int, loans: int, run: str) -> None:
    """``messages`` reminders due now, spread over the lender's loans, in one insert (the
    lender's earlier runs' messages deleted first)."""
    from django.db import connection

    from apps.notifications.models import Notification

    Notification.objects.filter(lender=lender).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            REMINDERS, {"lender": lender.pk, "messages": messages, "loans": loans, "run": run}
        )


def dispatch(
    *,
    lender: Any,
    messages: int,
    broker: RedisServer,
    env: dict[str, str],
    at: datetime | None,
    folder: Path,
) -> None:
    from apps.notifications.models import Notification

    command = celery_worker_command("notify", queues="notify")
    if at is not None:  # the worker's clock on a weekday morning
        command = [sys.executable, "-m", "tools.bench._at_time", at.isoformat(), *command[2:]]
    sent = Notification.objects.filter(lender=lender, status="sms")
    run = worker_run(
        command=command,
        env=env,
        folder=folder,
        broker=broker,
        task="notifications.notifications_dispatch",
        queue="notify",
        done=lambda: sent.count() >= messages,
    )
    elapsed, worker_cpu, fake_cpu, db_cpu = run.elapsed, run.worker_cpu, run.own_cpu, run.db_cpu
    worker_rss = run.worker_rss
    rate = messages / elapsed
    print(
        f"  dispatched   {rate:8.1f} messages/s by one notify worker ({messages} in {elapsed:.1f} s)"
    )
    print(
        f"  cpu/message  worker {worker_cpu / messages * 1000:.2f} ms "
        f"({messages / worker_cpu:.0f} per worker core), fake provider {fake_cpu / messages * 1000:.2f} ms, "
        f"PostgreSQL {db_cpu / messages * 1000:.2f} ms"
    )
    print(f"  worker       peak memory {worker_rss:.0f} MiB")


def reports(
    *, lender: Any, fake: Any, count: int, concurrency: int, env: dict[str, str]
) -> list[str]:
    from apps.integrations.messaging.registry import messaging_callback_url
    from apps.notifications.models import Notification

    path = urlsplit(
        messaging_callback_url(provider="africastalking", lender_slug=lender.slug, route="delivery")
    ).path
    refs = list(
        Notification.objects.filter(lender=lender, status="sms")
        .order_by("id")
        .values_list("provider_ref", flat=True)[:count]
    )
    port = free_port()
    posts = [
        Post(
            path=path,
            body=urlencode(
                {"id": ref, "status": "Success", "phoneNumber": "+254700000000"}
            ).encode(),
            content_type="application/x-www-form-urlencoded",
        ).raw(port)
        for ref in refs
    ]
    server = start_server(port, 2, 1, env)
    try:
        pids = server_pids(server)
        before = cpu_seconds(pids)
        database = DatabaseCpu()
        load = post_all(
            port, posts, concurrency=concurrency, accepted=lambda status, _: status == 200
        )
        app_cpu = sum(cpu_seconds(pids).values()) - sum(before.values())
        db_cpu = database.stop()
        server_rss = worker_rss_mib(server)
    finally:
        server.terminate()
        server.wait(timeout=20)
    done = len(load.latencies)
    delivered = Notification.objects.filter(provider_ref__in=refs, delivery="delivered").count()
    rate = done / load.elapsed
    app_cores = app_cpu / load.elapsed
    print(
        f"  reports      {rate:8.1f}/s ({rate / app_cores:.1f} per app core: app used "
        f"{app_cores:.2f} cores), {concurrency} connections, gunicorn 2 sync workers"
    )
    print(
        f"  latency      p50 {percentile(load.latencies, 50):.1f} ms  p95 {percentile(load.latencies, 95):.1f} ms  "
        f"p99 {percentile(load.latencies, 99):.1f} ms"
    )
    print(
        f"  cpu/report   app {app_cpu / done * 1000:.2f} ms  PostgreSQL {db_cpu / done * 1000:.2f} ms  "
        f"load generator {load.own_cpu / done * 1000:.2f} ms"
    )
    print(
        f"  delivered    {delivered} of {len(refs)} reported; largest server process {server_rss:.0f} MiB"
    )
    problems = list(load.errors[:3])
    if delivered != len(refs):
        problems.append(f"{len(refs) - delivered} reports did not move their message")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    folder, broker = run_broker("bench-notify-")
    # the callbacks' throttle (the webhooks' scope): measure the path, not the throttle
    os.environ["PAYMENTS_WEBHOOK_THROTTLE"] = "100000000/min"
    django_on_bench_database()
    from tools.fakes.africastalking import FakeAfricasTalking

    fake = FakeAfricasTalking()
    fake.app(username=AT_USERNAME, api_key=AT_KEY)
    base = fake.start()
    try:
        lender, at = lender_in_hours()
        loans_seed(lender=lender, loans=args.loans, tag="92")
        reminders_seed(
            lender=lender, messages=args.messages, loans=args.loans, run=f"bench-{time.time_ns():x}"
        )
        local = (at or datetime.now(UTC)).astimezone(ZoneInfo(lender.timezone))
        print(
            f"bench-notify: {args.messages} reminders due now for one lender ({args.loans} loans, "
            f"{lender.country}, {local:%a %H:%M} local, inside its contact window"
            f"{'; the worker clock moved there: no window is open today' if at else ''}), "
            "SMS by Africa's Talking (loopback fake), PostgreSQL, Redis"
        )
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DJANGO_LOG_LEVEL="WARNING",
            DJANGO_CONN_MAX_AGE="60",
            CELERY_TASK_ALWAYS_EAGER="false",
            AFRICASTALKING_API_BASE=base,
        )
        dispatch(
            lender=lender, messages=args.messages, broker=broker, env=env, at=at, folder=folder
        )
        from apps.notifications.models import Notification

        held = Notification.objects.filter(lender=lender).exclude(status="sms").count()
        print(
            f"  provider     {len(fake.messages)} messages taken for {args.messages} reminders, "
            f"{held} not sent"
        )
        problems = reports(
            lender=lender,
            fake=fake,
            count=min(args.reports, args.messages),
            concurrency=args.concurrency,
            env=env,
        )
    finally:
        fake.stop()
        broker.stop()
    print(
        f"  peak memory  this process (seeding, the fake, the load generator) {peak_rss_mib():.0f} MiB"
    )
    if len(fake.messages) != args.messages or held:
        problems.append("a reminder was sent twice, or not at all")
    for problem in problems:
        print(f"  PROBLEM      {problem}")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
