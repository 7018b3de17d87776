"""Drills 1 and 2: duplicate, disordered and bad webhook deliveries."""

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import Loan, LoanStageChange, Payment, PaymentReversal, WebhookEvent
from apps.collections.selectors import loan_outstanding
from apps.collections.services import loan_stage_sweep
from apps.devices.models import Device
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.collections.webhooks import URL, event, headers
from tests.devices.factories import enrolled_phone
from tests.drills.conftest import scale

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]


THROTTLED: list[int] = []


def post(body: bytes, hdrs: dict[str, str]) -> int:
    """Deliver as a provider does: a 429 is retried after the time the answer asks for."""
    try:
        for _ in range(20):
            answer = Client().post(URL, data=body, content_type="application/json", **hdrs)
            if answer.status_code != 429:
                return answer.status_code
            THROTTLED.append(1)
            time.sleep(min(float(answer.headers.get("Retry-After", 1)), 5.0))
        return answer.status_code
    finally:
        connection.close()


def test_duplicate_and_disordered_webhooks_equal_a_serial_replay(lender_a, report) -> None:
    """Each late loan's arrears paid by an event delivered 5 times at once, and a small payment
    whose refund arrives before it (5 times too): balances end where applying each distinct
    event once, in order, would leave them, and each loan that cured unlocks exactly once."""
    loans_n = scale(12, 1000)
    for _ in range(loans_n):
        noticed(enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=50))[0].loan)
    loan_stage_sweep(
        lender_id=lender_a.pk,
        business_date=lender_local_date(lender=lender_a),
        id_from=0,
        id_to=10**12,
    )
    loans = list(Loan.objects.filter(lender=lender_a).order_by("pk"))
    assert all(loan.stage == "block_apps" for loan in loans)
    before = {loan.pk: loan_outstanding(loan=loan).amount for loan in loans}
    versions = dict(
        Device.objects.filter(lender=lender_a).values_list("loan_id", "desired_version")
    )
    deliveries, expected = [], {}
    for loan in loans:
        arrears = loan.installments.get(sequence=1).total_due
        cure = event(loan.reference, str(arrears), f"P-{loan.pk}")
        small = event(loan.reference, "10.00", f"S-{loan.pk}")
        refund = event(
            loan.reference,
            "10.00",
            f"R-{loan.pk}",
            type_="payment.reversed",
            reverses=f"S-{loan.pk}",
            kind="refund",
        )
        expected[loan.pk] = before[loan.pk] - arrears  # the small payment is refunded in full
        for body in (cure, small, refund):
            deliveries += [(body, headers(lender_a, body))] * 5
    random.Random(7).shuffle(deliveries)  # refunds often come before their payment
    THROTTLED.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda d: post(*d), deliveries))
    seconds = time.perf_counter() - started
    wrong = {
        pk: (loan_outstanding(loan=Loan.objects.get(pk=pk)).amount, want)
        for pk, want in expected.items()
        if loan_outstanding(loan=Loan.objects.get(pk=pk)).amount != want
    }
    unlocks = dict.fromkeys(expected, 0)
    for change in LoanStageChange.objects.filter(cause="payment", to_stage="none"):
        unlocks[change.loan_id] += 1
    phones = {
        loan_id: v - versions[loan_id]
        for loan_id, v in Device.objects.filter(lender=lender_a).values_list(
            "loan_id", "desired_version"
        )
    }
    report(
        f"duplicate webhooks: {len(deliveries)} deliveries of {len(loans) * 3} events to {len(loans)} loans "
        f"in {seconds:.1f} s on 8 threads ({len(THROTTLED)} throttled with 429 and retried); answers "
        f"{sorted(set(statuses))}; balances off the serial replay: "
        f"{len(wrong)}; loans unlocked exactly once: {sum(n == 1 for n in unlocks.values())}/{len(loans)}"
    )
    assert set(statuses) == {200}
    assert not wrong
    assert set(unlocks.values()) == {1}
    assert set(phones.values()) == {1}  # one new state per phone: the unlock
    assert Payment.objects.count() == 2 * len(loans)
    assert PaymentReversal.objects.count() == len(loans)
    assert WebhookEvent.objects.count() == 3 * len(loans)


def test_bad_webhooks_are_all_refused_audited_and_store_nothing(lender_a, report) -> None:
    loan = enrolled_phone(lender_a)[0].loan
    good = event(loan.reference, "100.00", "OK-1")
    assert post(good, headers(lender_a, good)) == 200
    stored = (Payment.objects.count(), WebhookEvent.objects.count())
    audited = AuditEvent.objects.filter(action="collections.webhook.rejected").count()
    signed = headers(lender_a, good)
    changed = bytearray(event(loan.reference, "100.00", "BAD-1"))
    flipped = event(loan.reference, "100.00", "BAD-1")
    changed[changed.index(b"100.00")] = ord("9")  # one byte changed after signing
    stale = event(loan.reference, "100.00", "BAD-2")
    huge = b'{"id": "x", "pad": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    malformed = b'{"id": "evt-BAD-4", "type": "payment.succeeded", "data": {'
    other_body_same_id = event(loan.reference, "900.00", "OK-1", event_id="evt-OK-1")
    cases = {
        "bad signature": (
            good,
            {**signed, "HTTP_X_SIGNATURE": signed["HTTP_X_SIGNATURE"][:-4] + "beef"},
        ),
        "timestamp 301 s off": (stale, headers(lender_a, stale, timestamp=int(time.time()) - 301)),
        "one byte changed": (bytes(changed), headers(lender_a, flipped)),
        "replayed event id, another body": (
            other_body_same_id,
            headers(lender_a, other_body_same_id),
        ),
        "10 MB body": (huge, headers(lender_a, huge)),
        "malformed JSON": (malformed, headers(lender_a, malformed)),
        "no signature": (good, {"HTTP_X_LENDER": lender_a.slug}),
    }
    answers = {name: post(body, hdrs) for name, (body, hdrs) in cases.items()}
    refused = sum(400 <= code < 500 for code in answers.values())
    now_audited = AuditEvent.objects.filter(action="collections.webhook.rejected").count() - audited
    report(
        f"bad webhooks: {refused}/{len(cases)} refused with 4xx {answers}; audited {now_audited}; "
        f"stored {Payment.objects.count() - stored[0]} payments, {WebhookEvent.objects.count() - stored[1]} events"
    )
    assert refused == len(cases)
    assert now_audited == len(cases)
    assert (Payment.objects.count(), WebhookEvent.objects.count()) == stored
    assert loan_outstanding(loan=loan).amount == Decimal(13000)
