"""bench-offline: offline unlock codes issued per second, and a payment to "unlocked" for a
phone with no network.

Part 1, issuing. Seeds ``--phones`` enrolled phones (default N/10) in a dedicated database,
then issues ``--codes`` codes (N, default 100,000) round by round, one code per phone a
round, as payments would: each phone's count climbs as a real phone's does over its loan
(round r gives counts up to 2r+1, and the scheme's work grows with the count). Two ways:

* in batches of ``--batch`` (1,000) phones per transaction (``offline_codes_issue`` is
  set-based: one lock, one insert, one update, one audit append per batch), the figure the
  issue's target names;
* one code per transaction for a sample (``--single``, 2,000), as a payment's own
  transaction issues it.

Beside them, the floor measured in the same run: the OpenPAYGO library alone making the same
tokens (SipHash, pure Python, one hash per count step). Peak memory of the process is printed
after each round: flat as rounds go by.

Part 2, end to end (``--e2e``, on by default): gunicorn and a Celery worker on loopback with the
SMS wait set to a few seconds (``--sms-after``, 3), a phone enrolled by the reference simulator
and locked by the sweep, its network cut; a signed payment webhook; the clock runs until the
simulator, fed the code read from the fake SMS gateway's spool, says it is no longer locked,
with no request to the server. Prints the seconds (target: under 60).

    make bench-offline            # N=100000
    make bench-offline N=20000
"""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import timedelta
from typing import Any

from tools.bench._setup import django_on_bench_database, peak_rss_mib

TARGET_PER_SECOND = 2000
TARGET_E2E_SECONDS = 60.0


def seed_phones(*, phones: int) -> Any:
    """The bench lender with ``phones`` enrolled phones that hold offline terms (an epoch),
    seen just now (so no code falls due for SMS at once), their counts back at zero."""
    from django.utils import timezone

    from apps.devices.models import Device, OfflineToken
    from tools.bench._seed import enrolled_seed, lender_seed, template_loan_seed

    lender = lender_seed(slug="bench-offline", name="Bench Offline")
    template = template_loan_seed(lender)
    enrolled_seed(lender=lender, template=template, devices=phones)
    OfflineToken.objects.filter(lender=lender).delete()
    Device.objects.filter(lender=lender).update(
        token_epoch=template.start_date, token_count=0, last_seen_at=timezone.now()
    )
    return lender


def issue_rounds(
    *, lender: Any, codes: int, phones: int, batch: int
) -> tuple[float, list[tuple[int, int]]]:
    """Issue ``codes`` codes in rounds of one per phone; returns (seconds, [(count of the
    newest code, tokens)] per round for the library floor)."""
    from django.db import transaction

    from apps.core.actor import Actor
    from apps.devices.models import Device
    from apps.devices.services import CodeIssue, offline_codes_issue

    ids = list(
        Device.objects.filter(lender=lender, status="enrolled")
        .order_by("pk")
        .values_list("pk", flat=True)[:phones]
    )
    epoch = Device.objects.get(pk=ids[0]).token_epoch
    actor, issued, rounds, elapsed = Actor.system(), 0, [], 0.0
    round_no = 0
    while issued < codes:
        round_no += 1
        paid_until = epoch + timedelta(days=30 * round_no)
        take = ids[: min(len(ids), codes - issued)]
        started = time.perf_counter()
        for first in range(0, len(take), batch):
            chunk = take[first : first + batch]
            with transaction.atomic():
                offline_codes_issue(
                    issues=[
                        CodeIssue(device_id=pk, kind="set_time", paid_until=paid_until)
                        for pk in chunk
                    ],
                    actor=actor,
                    cause="Benchmark payment.",
                )
        elapsed += time.perf_counter() - started
        issued += len(take)
        rounds.append((2 * round_no - 1, len(take)))
        print(
            f"  round {round_no:>3}: {issued:>7} codes, newest count {2 * round_no - 1:>3}, "
            f"peak RSS {peak_rss_mib():6.1f} MiB",
            flush=True,
        )
    return elapsed, rounds


def issue_singles(*, lender: Any, sample: int) -> float:
    """``sample`` codes, one per transaction (as a payment issues its phone's)."""
    from django.db import transaction

    from apps.core.actor import Actor
    from apps.devices.models import Device
    from apps.devices.services import CodeIssue, offline_codes_issue

    phones = list(
        Device.objects.filter(lender=lender, status="enrolled")
        .order_by("-pk")
        .values_list("pk", "token_epoch")[:sample]
    )
    actor = Actor.system()
    started = time.perf_counter()
    for pk, epoch in phones:
        with transaction.atomic():
            offline_codes_issue(
                issues=[CodeIssue(device_id=pk, kind="set_time", paid_until=epoch)],
                actor=actor,
                cause="Benchmark payment.",
            )
    return time.perf_counter() - started


def library_floor(rounds: list[tuple[int, int]]) -> float:
    """Seconds the OpenPAYGO library alone takes to make the same tokens."""
    from apps.devices.offline import token_make

    secret = secrets.token_hex(16)  # any phone's: the work does not depend on the secret
    started = time.perf_counter()
    for newest, tokens in rounds:
        for _ in range(tokens):
            token_make(
                secret=secret, count=newest - 2 if newest > 1 else 0, kind="set_time", value=30
            )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.offline", description=__doc__)
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--phones", type=int, default=0, help="default: codes / 10")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--e2e", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--sms-after", type=int, default=3)
    args = parser.parse_args(argv)
    phones = args.phones or max(1, args.codes // 10)
    django_on_bench_database("smartcollection_bench_offline")
    from django.conf import settings

    settings.OFFLINE_CODE_SMS_AFTER_SECONDS = 3600  # nothing is sent while issuing
    print(f"bench-offline: {args.codes} codes over {phones} phones", flush=True)
    started = time.perf_counter()
    lender = seed_phones(phones=phones)
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    seconds, rounds = issue_rounds(lender=lender, codes=args.codes, phones=phones, batch=args.batch)
    rate = args.codes / seconds
    floor = library_floor(rounds)
    single = issue_singles(lender=lender, sample=args.single) if args.single else 0.0
    print()
    print(
        f"  issued in batches of {args.batch}: {args.codes} codes in {seconds:.2f} s = "
        f"{rate:,.0f}/s (target >= {TARGET_PER_SECOND:,}/s: "
        f"{'met' if rate >= TARGET_PER_SECOND else 'NOT met'})"
    )
    print(
        f"  floor, the library alone, same tokens: {args.codes / floor:,.0f}/s "
        f"({floor:.2f} s); the product spends {seconds / floor:.2f}x the floor"
    )
    if args.single:
        print(
            f"  one per transaction (as a payment): {args.single / single:,.0f}/s "
            f"({single / args.single * 1000:.2f} ms each)"
        )
    print(f"  peak RSS: {peak_rss_mib():.1f} MiB")
    ok = rate >= TARGET_PER_SECOND
    if args.e2e:
        from tools.bench.offline_e2e import run_e2e

        took = run_e2e(sms_after=args.sms_after)
        e2e_ok = took < TARGET_E2E_SECONDS
        print(
            f"  webhook to unlocked, phone offline: {took:.1f} s (SMS wait {args.sms_after} s; "
            f"target < {TARGET_E2E_SECONDS:.0f} s: {'met' if e2e_ok else 'NOT met'})"
        )
        ok = ok and e2e_ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
