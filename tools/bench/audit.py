"""bench-audit: latency of ``audit_event_record`` with 8 concurrent writers on one lender.

Every writer appends events to the same lender's chain, each event in its own
transaction, the way services call it. Prints p50/p95/p99 of the call and of
the whole transaction (call plus commit), throughput, the same figures for a
single writer as the floor, whether the chain verifies, and peak memory.

    make bench-audit            # 8 writers x 500 events
    make bench-audit N=20000    # total events
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from tools.bench._setup import django_on_bench_database, peak_rss_mib, percentile


def run(*, writers: int, events: int) -> dict[str, float]:
    from django.db import connection, transaction

    from apps.audit.models import AuditChain
    from apps.audit.selectors import audit_chain_verify
    from apps.audit.services import audit_event_record
    from apps.core.actor import Actor
    from apps.lenders.services import lender_create

    with transaction.atomic():
        slug = f"bench-{uuid.uuid4().hex[:10]}"
        lender = lender_create(
            name=slug,
            slug=slug,
            country="KE",
            currency="KES",
            timezone="Africa/Nairobi",
            locale="en",
            actor=Actor.system(),
        )
    connection.close()
    per_writer = events // writers
    call_ms: list[float] = []
    txn_ms: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def writer(n: int) -> None:
        mine_call, mine_txn = [], []
        barrier.wait()
        for i in range(per_writer):
            t0 = time.perf_counter()
            with transaction.atomic():
                t1 = time.perf_counter()
                audit_event_record(
                    actor=Actor.system(),
                    action="bench.event.recorded",
                    lender_id=lender.pk,
                    data={"writer": n, "i": i, "amount": "125.50"},
                )
                t2 = time.perf_counter()
            t3 = time.perf_counter()
            mine_call.append((t2 - t1) * 1000)
            mine_txn.append((t3 - t0) * 1000)
        with lock:
            call_ms.extend(mine_call)
            txn_ms.extend(mine_txn)
        connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    call_ms.sort()
    txn_ms.sort()
    chain = AuditChain.objects.get(lender=lender)
    intact = audit_chain_verify(chain=chain) is None and chain.last_seq == per_writer * writers + 1
    return {
        "events": per_writer * writers,
        "seconds": elapsed,
        "throughput": per_writer * writers / elapsed,
        "call_p50": percentile(call_ms, 50),
        "call_p95": percentile(call_ms, 95),
        "call_p99": percentile(call_ms, 99),
        "txn_p50": percentile(txn_ms, 50),
        "txn_p95": percentile(txn_ms, 95),
        "txn_p99": percentile(txn_ms, 99),
        "intact": float(intact),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="total events per run")
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    django_on_bench_database()

    print(
        f"bench-audit: {args.events} events on one lender's chain, PostgreSQL, each in its own transaction"
    )
    print(
        f"{'run':<22}{'events/s':>10}{'call p50':>10}{'call p95':>10}{'call p99':>10}"
        f"{'txn p50':>10}{'txn p95':>10}{'txn p99':>10}  chain"
    )
    for label, writers in (
        ("floor: 1 writer", 1),
        (f"{args.writers} concurrent writers", args.writers),
    ):
        r = run(writers=writers, events=args.events)
        print(
            f"{label:<22}{r['throughput']:>10.0f}{r['call_p50']:>9.2f}ms{r['call_p95']:>8.2f}ms"
            f"{r['call_p99']:>8.2f}ms{r['txn_p50']:>8.2f}ms{r['txn_p95']:>8.2f}ms{r['txn_p99']:>8.2f}ms"
            f"  {'verified' if r['intact'] else 'BROKEN'}"
        )
        if not r["intact"]:
            raise SystemExit("chain broken")
    print(f"peak memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
