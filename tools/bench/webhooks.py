"""bench-webhooks: signed webhook deliveries per second from one Celery worker to a receiver.

Seeds a lender with ``--loans`` loans (signed through the product) and one webhook endpoint
aimed at a loopback receiver in this process, then appends ``--events`` public events
(``payment.applied``) to the lender's audit chain, spread over the loans, in one statement
through the chain's own append (``audit_events_record_select``: numbered and hashed as
every event is; recording them through payments would measure the payments, which
bench-payments covers). Then one Celery worker of the ``webhooks`` queue (the production
command, one process) on a Redis broker of the run's own is sent the dispatcher task once,
as beat or a change's nudge sends it: it projects the events into deliveries and posts them,
signed, from its pool of ``WEBHOOK_SEND_THREADS`` connections, handing on to a fresh run of
itself every ``DISPATCH_RUN_SECONDS``. The clock runs until every delivery is recorded
delivered.

Printed: deliveries per second, the worker's CPU per delivery, the receiver's (in this
process: it verifies every signature with the standardwebhooks library) and PostgreSQL's,
and the worker's peak memory. Every event must reach the receiver exactly once, with a valid
signature, in order per loan.

    make bench-webhooks                 # 20,000 events over 500 loans
    make bench-webhooks N=50000
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tools.bench._seed import lender_seed, loans_seed
from tools.bench._server import (
    celery_worker_command,
    run_broker,
    worker_run,
)
from tools.bench._setup import ROOT, django_on_bench_database, peak_rss_mib

SLUG = "bench-webhooks"

# n, target id, data: one payment.applied a row, the loans taken in turn
EVENTS = """
SELECT n, l.id::text AS target_id, jsonb_build_object(
    'payment_id', n, 'amount', '150.00', 'currency', 'KES', 'channel', 'provider',
    'provider', 'bench', 'provider_ref', %(run)s || '-' || n,
    'received_at', now()::text) AS data
FROM generate_series(1, %(events)s) AS n
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k
      FROM collections_loan WHERE lender_id = %(lender)s) AS l
  ON l.k = n %% %(loans)s
"""


class Receiver:
    """The lender's receiver: verifies each post's signature, counts each event id, and
    checks that one loan's events come in the order of their ids."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        self.last_of_loan: dict[int, int] = {}
        self.bad_signatures = 0
        self.out_of_order = 0
        self.taken = 0

    def answer(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, bytes, str]:
        try:
            payload = self.webhook.verify(body, dict(headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return 400, b"", "text/plain"
        event = int(payload["id"].removeprefix("evt_"))
        loan = payload["data"]["loan_id"]
        with self.lock:
            self.seen[payload["id"]] = self.seen.get(payload["id"], 0) + 1
            if event < self.last_of_loan.get(loan, 0):
                self.out_of_order += 1
            self.last_of_loan[loan] = event
            self.taken += 1
        return 204, b"", "text/plain"


def events_append(*, lender: Any, events: int, loans: int) -> None:
    from django.db import transaction

    from apps.audit.services import audit_events_record_select
    from apps.core.actor import Actor

    with transaction.atomic():
        audit_events_record_select(
            lender_id=lender.pk,
            actor=Actor.system(),
            action="collections.payment.received",
            target_type="collections.loan",
            reason="bench",
            rows=EVENTS,
            params={
                "events": events,
                "loans": loans,
                "lender": lender.pk,
                "run": f"bench-{time.time_ns():x}",
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--database", default="smartcollection_bench")
    args = parser.parse_args()

    folder, broker = run_broker("bench-webhooks-")
    django_on_bench_database(args.database)
    from apps.core.actor import Actor
    from apps.integrations.models import WebhookDelivery, WebhookEndpoint
    from apps.integrations.services import webhook_endpoint_create
    from tools.fakes.loopback import address, serve_posts

    lender = lender_seed(slug=SLUG, name="Bench webhooks")
    loans_seed(lender=lender, loans=args.loans, tag="95")
    WebhookEndpoint.objects.filter(lender=lender).delete()  # and the last run's deliveries
    from django.db import connection

    with connection.cursor() as cursor:  # a run does not pay for the last one's clean-up
        cursor.execute(f"VACUUM ANALYZE {WebhookDelivery._meta.db_table}")
    receiver: Receiver | None = None
    server = None
    try:
        # the receiver's address is known once it listens; its secret once the endpoint exists
        holder: dict[str, Receiver] = {}
        server = serve_posts(lambda p, h, b: holder["r"].answer(p, h, b))
        created = webhook_endpoint_create(
            lender_id=lender.pk, url=address(server) + "/hooks", actor=Actor.system()
        )
        receiver = holder["r"] = Receiver(created.secret)
        events_append(lender=lender, events=args.events, loans=args.loans)
        from django.conf import settings

        print(
            f"bench-webhooks: {args.events} public events (payment.applied) over {args.loans} "
            f"loans of one lender, one endpoint on a loopback receiver verifying every "
            f"signature; one worker, {settings.WEBHOOK_SEND_THREADS} connections; "
            "PostgreSQL, Redis"
        )
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DJANGO_LOG_LEVEL="WARNING",
            DJANGO_CONN_MAX_AGE="60",
            CELERY_TASK_ALWAYS_EAGER="false",
        )
        delivered = WebhookDelivery.objects.filter(endpoint=created.endpoint, status="delivered")
        run = worker_run(
            command=celery_worker_command("webhooks", queues="webhooks"),
            env=env,
            folder=folder,
            broker=broker,
            task="integrations.webhooks_dispatch",
            queue="webhooks",
            done=lambda: delivered.count() >= args.events,
        )
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        broker.stop()
    n, elapsed, worker_cpu = args.events, run.elapsed, run.worker_cpu
    print(f"  delivered    {n / elapsed:8.1f} deliveries/s by one worker ({n} in {elapsed:.1f} s)")
    print(
        f"  cpu/delivery worker {worker_cpu / n * 1000:.2f} ms ({n / worker_cpu:.0f} per worker "
        f"core), receiver {run.own_cpu / n * 1000:.2f} ms, PostgreSQL {run.db_cpu / n * 1000:.2f} ms"
    )
    print(f"  worker       peak memory {run.worker_rss:.0f} MiB")
    print(f"  peak memory  this process (seeding, the receiver) {peak_rss_mib():.0f} MiB")
    if receiver is None:
        raise SystemExit("no receiver")
    twice = sum(1 for count in receiver.seen.values() if count > 1)
    print(
        f"  receiver     {len(receiver.seen)} events taken, {twice} twice, "
        f"{receiver.bad_signatures} bad signatures, {receiver.out_of_order} out of loan order"
    )
    if len(receiver.seen) != n or receiver.bad_signatures or receiver.out_of_order:
        print("  PROBLEM      an event was lost, badly signed or out of order")
        raise SystemExit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(ROOT)))
    main()
