"""The hand-written statements of ``apps/collections/sql.py``: each held to a Python oracle of
its rule, worked out here, and to the index it was written for (its plan, on tables with
enough rows that the planner prefers an index to reading them whole, and with sequential scans
off in the test's transaction).

Statements whose rule is proven elsewhere against an oracle of their own:

- ``SWEEP_FORECAST``: test_services_sweep_forecast.py (the forecast against the sweep itself).
- ``RAISE_RANGE``, ``SWEEP_AGAIN``, ``PAUSE_ENDS_LOCK``, ``PAUSES_CLOSE``, ``IDS_LOCK``,
  ``STAGE_HISTORY_INSERT``: test_properties_restriction.py (the engine against an oracle
  written from the policy's terms), test_services_lock_notice.py, test_races_restriction.py.
- ``RELEASED_STAGED``, ``LOANS_STAGE_NONE``: test_services_released_with_arrears.py (and the
  plan of ``RELEASED_STAGED`` below, on a book of its own).
- ``RAISED``: tests/notifications/test_services_notifications.py (the overdue notices queued).
- ``FEE_LOANS_LOCK``, ``FEE_REACH``: test_properties_late_fees.py, test_services_late_fees.py.
- ``PAYMENT_INSERT``, ``WEBHOOK_EVENT_GET``, ``WEBHOOK_EVENT_INSERT``,
  ``LOAN_LOCK_BY_REFERENCE``, ``INSTALLMENTS_LOCK``: test_api_webhook_hot_path.py,
  test_api_webhook.py.
- ``installments_paid_update``, ``allocations_insert``: test_allocation.py,
  test_services_payments.py.
- ``LOCK_NOTICED_BY``: test_selectors_work_queues.py (the loans tomorrow's sweep would lock).
- ``STAGE_COUNTS``, ``PAR``, ``PAR30_BY_*``, ``ROLL_RATES``, ``CURE_RATES``, ``UNLOCK_TIMES``:
  test_portfolio.py (each figure against the answer worked out from the rows).
- ``SUSPENSION_RESTRICTED``, ``LOANS_STAGE_REMINDER``: test_services_suspensions.py, and below.
"""

import itertools
import json
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql as pg

from apps.audit.models import AuditEvent
from apps.collections import sql
from apps.collections.ladder import Ladder, rank
from apps.collections.models import (
    STAGE_ORDER,
    Allocation,
    Installment,
    Loan,
    LoanPause,
    LoanStageChange,
    Payment,
    PaymentAttempt,
    PaymentReversal,
    Stage,
    WebhookEvent,
)
from apps.collections.selectors import (
    PaymentReceiptFacts,
    WorkQueue,
    lender_id_by_slug,
    loan_days_overdue,
    loan_outstanding,
    loan_work_queue,
    payment_receipt_facts,
)
from apps.collections.services import payment_record, payment_reverse
from apps.core.actor import Actor
from apps.core.money import Money
from apps.core.sql import array_literal
from apps.customers.models import ConsentChallenge, ConsentRecord, Customer
from apps.devices.models import Device
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification
from apps.retailers.models import Shop
from tests.collections.factories import signed_loan, started_attempt
from tools.bench._seed import copies

pytestmark = pytest.mark.django_db

ROWS = 2000  # loans (and twelve installments each) beside the one under test: ANALYZE reads
# every row of a table this size (its sample is 30,000), so the statistics and plans are the same
# from run to run


def run(statement: pg.Composable, params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def days_overdue(loan: Loan, on: date) -> int:
    """By hand: days since the oldest unpaid installment fell due, once past the grace days."""
    unpaid = [i.due_date for i in loan.installments.all() if i.paid_at is None]
    late_by = (on - min(unpaid)).days if unpaid else 0
    return late_by if late_by > loan.grace_days else 0


# --- oracles ----------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    days_after_signing=st.integers(min_value=0, max_value=420),
    paused=st.booleans(),
)
def test_classify_one_is_the_ladder_for_one_loan(
    lender_a, days_after_signing: int, paused: bool
) -> None:
    """``CLASSIFY_ONE`` (the sweep's classification, for one loan) gives the days overdue
    worked out by hand and the stage ``Ladder.stage_for`` gives those days: with no notice
    sent, never a stage that blocks apps or locks; paused, reminders at most."""
    sid = transaction.savepoint()
    try:
        signed = timezone.now() - timedelta(days=430)
        loan = signed_loan(lender_a, signed_at=signed)
        on = signed.date() + timedelta(days=days_after_signing)
        if paused:
            LoanPause.objects.create(
                lender=lender_a,
                loan=loan,
                kind=LoanPause.Kind.HARDSHIP,
                status=LoanPause.Status.ACTIVE,
                starts_on=on - timedelta(days=1),
                ends_on=on + timedelta(days=1),
                reason="test",
                requested_by="system",
            )
        ladder = Ladder.load(lender=lender_a, policy_version_ids={loan.policy_version_id})
        params = {
            "loan": loan.pk,
            "bd": on,
            "order": list(STAGE_ORDER),
            "tz": lender_a.timezone,
            "noticed_before": timezone.now(),
            **ladder.sql_params(),
        }
        found = run(sql.CLASSIFY_ONE, params)
        days = days_overdue(loan, on)
        expected = ladder.stage_for(
            policy_version_id=loan.policy_version_id, days=days, paused=paused, noticed=0
        )
        # the rules the docstring names, held to the oracle itself as well: no notice sent,
        # never a block or a lock; paused, reminders at most
        assert rank(expected) < rank("block_apps")
        if paused:
            assert expected in ("none", "reminder")
        if days == 0:
            assert found == []
        else:
            assert found == [(days, paused, expected, 0)]
    finally:
        transaction.savepoint_rollback(sid)


def test_range_starts_cut_the_active_loans_into_slices(lender_a, lender_b) -> None:
    mine = [signed_loan(lender_a).pk for _ in range(7)]
    signed_loan(lender_b)  # another lender's loan, in between, counts for nothing
    Loan.objects.filter(pk=mine[3]).update(status=Loan.Status.CANCELLED)
    active = sorted(pk for pk in mine if pk != mine[3])
    for size in (1, 2, 4, 6, 10):
        starts = [row[0] for row in run(sql.RANGE_STARTS, [lender_a.pk, size])]
        assert starts == active[::size]


@pytest.mark.parametrize(
    ("fee_type", "value", "cap"),
    [("percent", "7.5", "1000"), ("percent", "12.345", "150"), ("fixed", "250", None)],
)
def test_the_fee_if_late_is_the_products_terms(lender_a, fee_type, value, cap) -> None:
    """``FEE_REACH_FOR_PAYMENT`` records, on each installment late by then, the fee its terms
    charge: fixed, or the percent of the installment rounded half up to the currency's minor
    unit and capped."""
    loan = signed_loan(
        lender_a,
        signed_at=timezone.now() - timedelta(days=200),
        late_fee_type=fee_type,
        late_fee_value=Decimal(value),
        late_fee_cap=Decimal(cap) if cap else None,
    )
    until = timezone.now()
    found = dict(run(sql.FEE_REACH_FOR_PAYMENT, {"loan": loan.pk, "until": until, "places": 2}))
    late = [i for i in loan.installments.all() if i.late_from <= until]
    assert late
    expected = {}
    for inst in late:
        if fee_type == "fixed":
            expected[inst.pk] = Decimal(value)
        else:
            total = inst.principal_amount + inst.interest_amount + inst.fee_amount
            fee = (total * Decimal(value) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            expected[inst.pk] = min(Decimal(cap), fee)
    assert found == expected


def test_a_payments_position_is_its_place_in_the_canonical_order(lender_a) -> None:
    """``PAYMENT_POSITION``: comes last exactly when every payment of the loan sorts before it
    by (received_at, provider, reference) and no reversal of the loan names it; misfiled when a
    reversal of its reference names another loan."""
    loan = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=10))
    other = signed_loan(lender_a)
    now = timezone.now()
    for n, (hours, ref) in enumerate([(5, "b"), (5, "d"), (2, "c")]):
        payment_record(
            loan_id=loan.pk,
            amount=Money(Decimal("10.00") + n, lender_a.currency),
            channel="provider",
            provider="mpesa",
            provider_ref=ref,
            received_at=now - timedelta(hours=hours),
            actor=Actor.system(),
        )
    # reversals of payments not arrived yet: of "z" on another loan, of "e" on this one
    for reversed_loan, reverses, ref in ((other, "z", "rev-1"), (loan, "e", "rev-2")):
        payment_reverse(
            loan_id=reversed_loan.pk,
            kind="refund",
            amount=Money(Decimal("1.00"), lender_a.currency),
            provider="mpesa",
            provider_ref=ref,
            payment_provider_ref=reverses,
            received_at=now,
            actor=Actor.system(),
        )
    keys = [(p.received_at, p.provider, p.provider_ref) for p in loan.payments.all()]
    for hours in (6, 5, 3, 2, 1, 0):
        for ref in ("a", "bb", "e", "z"):  # references not stored (they are unique)
            t = now - timedelta(hours=hours)
            params = {"lender": lender_a.pk, "loan": loan.pk, "t": t, "p": "mpesa", "r": ref}
            misfiled, comes_last = run(sql.PAYMENT_POSITION, params)[0]
            assert misfiled == (ref == "z")
            assert comes_last == (all(k < (t, "mpesa", ref) for k in keys) and ref != "e")


def test_a_payments_receipt_facts_are_its_row_and_what_its_loan_owes(lender_a) -> None:
    """``PAYMENT_RECEIPT`` (``payment_receipt_facts``) against the payment and its loan as the
    ORM reads them, and what is owed worked out from the installments by hand: after a
    payment, after a second one with a receipt number, on another loan, and for no payment."""
    loan = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=10))
    other = signed_loan(lender_a)
    paid = [
        payment_record(
            loan_id=on.pk,
            amount=Money(Decimal(amount), lender_a.currency),
            channel="provider",
            provider="mpesa",
            provider_ref=ref,
            received_at=timezone.now(),
            actor=Actor.system(),
            receipt_ref=receipt,
        ).payment
        for on, amount, ref, receipt in (
            (loan, "100.00", "p-1", ""),
            (loan, "35.50", "p-2", "QKX1Y2Z3"),
            (other, "10.00", "p-3", "QKX9"),
        )
    ]
    for payment in paid:
        stored = Payment.objects.select_related("loan").get(pk=payment.pk)
        owed = sum(
            (
                i.principal_amount
                + i.interest_amount
                + i.fee_amount
                + i.late_fee_amount
                - i.principal_paid
                - i.interest_paid
                - i.fee_paid
                - i.late_fee_paid
                for i in Installment.objects.filter(loan_id=stored.loan_id)
            ),
            Decimal(0),
        )
        assert payment_receipt_facts(payment_id=payment.pk) == PaymentReceiptFacts(
            loan_id=stored.loan_id,
            lender_id=stored.loan.lender_id,
            customer_id=stored.loan.customer_id,
            amount=Money(stored.amount, stored.loan.currency),
            receipt_ref=stored.receipt_ref,
            outstanding=Money(owed, stored.loan.currency),
        )
        assert owed == loan_outstanding(loan=stored.loan).amount
    with pytest.raises(Payment.DoesNotExist):
        payment_receipt_facts(payment_id=10**12)


def test_the_attempt_a_callback_names_is_the_querysets(lender_a, lender_b) -> None:
    """``ATTEMPT_BY_REF`` and ``ATTEMPT_BY_KEY`` against the querysets they replace: by the
    provider's id or by our key, only the lender's and the provider's own, never one with no
    provider id for an empty one."""
    loans = {lender: signed_loan(lender) for lender in (lender_a, lender_b)}
    attempts = PaymentAttempt.objects.bulk_create(
        started_attempt(loans[lender], provider=provider, attempt_ref=ref)
        for lender, provider, ref in (
            (lender_a, "mpesa", "ws_CO_1"),
            (lender_a, "mpesa", ""),
            (lender_a, "stripe", "cs_1"),
            (lender_a, "stripe", ""),
            (lender_b, "mpesa", "ws_CO_1"),
            (lender_b, "stripe", "cs_2"),
        )
    )
    asked = 0
    for lender, provider in itertools.product((lender_a, lender_b), ("mpesa", "stripe")):
        mine = PaymentAttempt.objects.filter(lender=lender, provider=provider)
        for ref in ("ws_CO_1", "cs_1", "cs_2", "", "nope"):
            found = run(sql.ATTEMPT_BY_REF, [lender.pk, provider, ref])
            oracle = [a.pk for a in mine.filter(attempt_ref=ref).exclude(attempt_ref="")]
            assert [row[0] for row in found] == oracle, (lender, provider, ref)
            asked += len(oracle)
        for attempt in attempts:
            found = run(sql.ATTEMPT_BY_KEY, [attempt.key, lender.pk, provider])
            assert [row[0] for row in found] == [a.pk for a in mine.filter(key=attempt.key)], (
                lender,
                provider,
                attempt,
            )
            asked += len(found)
    assert asked == 4 + len(attempts)


def test_the_push_a_paybill_confirmation_may_repeat_is_the_querysets(lender_a) -> None:
    """``ATTEMPT_PAID_BY_QUERY`` against the queryset it replaces: the oldest push of the
    loan, for the amount, started within the day, that the status query found paid (no
    receipt, its payment keyed by the push's id); never one of another loan or provider, of
    another amount, with a receipt, keyed otherwise, not paid, or older."""
    loan, other = signed_loan(lender_a), signed_loan(lender_a)
    now = timezone.now()

    def push(
        on: Loan,
        ref: str,
        *,
        amount: str = "10.00",
        provider: str = "mpesa",
        receipt: str = "",
        keyed_by: str = "",
        paid: bool = True,
        hours_ago: int = 1,
    ):
        payment = None
        if paid:
            payment = payment_record(
                loan_id=on.pk,
                amount=Money(Decimal(amount), lender_a.currency),
                channel="provider",
                provider=provider,
                provider_ref=keyed_by or ref,
                received_at=now,
                actor=Actor.system(),
            ).payment
        attempt = started_attempt(
            on,
            provider=provider,
            attempt_ref=ref,
            amount=Decimal(amount),
            status="paid" if paid else "started",
            payment=payment,
            receipt=receipt,
        )
        attempt.save()
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            created_at=now - timedelta(hours=hours_ago)
        )
        return attempt

    wanted = push(loan, "ws_CO_old", hours_ago=5)
    push(loan, "ws_CO_new", hours_ago=2)
    push(loan, "ws_CO_receipt", receipt="QKX1", hours_ago=6)
    push(loan, "ws_CO_keyed", keyed_by="QKX2", hours_ago=7)
    push(loan, "ws_CO_amount", amount="11.00", hours_ago=8)
    push(loan, "ws_CO_stripe", provider="stripe", hours_ago=9)
    push(loan, "ws_CO_open", paid=False, hours_ago=10)
    push(loan, "ws_CO_stale", hours_ago=30)
    push(other, "ws_CO_other", hours_ago=11)
    for on, amount, since in itertools.product(
        (loan, other), ("10.00", "11.00", "12.00"), (now - timedelta(days=1), now)
    ):
        oracle = (
            PaymentAttempt.objects.filter(
                loan=on,
                provider="mpesa",
                status="paid",
                receipt="",
                payment__provider_ref=F("attempt_ref"),
                amount=Decimal(amount),
                created_at__gte=since,
            )
            .order_by("created_at")
            .first()
        )
        params = {"loan": on.pk, "provider": "mpesa", "amount": Decimal(amount), "since": since}
        found = run(sql.ATTEMPT_PAID_BY_QUERY, params)
        assert [row[0] for row in found] == ([oracle.pk] if oracle else []), (on, amount, since)
    params = {"loan": loan.pk, "provider": "mpesa", "amount": Decimal("10.00"), "since": now}
    assert run(sql.ATTEMPT_PAID_BY_QUERY, {**params, "since": now - timedelta(days=1)})[0][0] == (
        wanted.pk
    )


def test_settling_an_attempt_writes_what_saving_its_fields_writes(lender_a) -> None:
    """``ATTEMPT_SETTLE`` against ``save(update_fields=...)`` of the same fields on a twin
    attempt: the same row but for the ids and the times, and no other attempt touched."""
    loan = signed_loan(lender_a)
    paid = payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal("10.00"), lender_a.currency),
        channel="provider",
        provider="mpesa",
        provider_ref="QKX1",
        received_at=timezone.now(),
        actor=Actor.system(),
    ).payment
    twins = PaymentAttempt.objects.bulk_create(
        started_attempt(loan, attempt_ref=ref) for ref in ("ws_CO_1", "ws_CO_2", "ws_CO_3")
    )
    by_sql, by_orm, bystander = twins
    now = timezone.now()
    run(
        sql.ATTEMPT_SETTLE,
        {
            "id": by_sql.pk,
            "status": "paid",
            "detail": "",
            "settled_at": now,
            "payment": paid.pk,
            "receipt": "QKX1",
        },
    )
    by_orm.status, by_orm.detail, by_orm.settled_at = "paid", "", now
    by_orm.payment, by_orm.receipt = paid, "QKX1"
    by_orm.save(
        update_fields=["status", "detail", "settled_at", "payment", "receipt", "updated_at"]
    )
    own = ("_state", "id", "key", "attempt_ref", "created_at", "updated_at")
    rows = {
        a.pk: {k: v for k, v in vars(a).items() if k not in own}
        for a in PaymentAttempt.objects.all()
    }
    assert PaymentAttempt.objects.get(pk=by_sql.pk).updated_at == now
    assert rows[by_sql.pk] == rows[by_orm.pk]
    assert rows[bystander.pk]["status"] == "starting"


def test_a_lender_is_found_by_its_exact_slug(lender_a, lender_b) -> None:
    """``LENDER_ID_BY_SLUG`` (``lender_id_by_slug``) against the queryset it replaces."""
    for slug in (lender_a.slug, lender_b.slug, lender_a.slug.upper(), f"{lender_a.slug}-x", ""):
        oracle = Lender.objects.filter(slug=slug).first()
        assert lender_id_by_slug(slug=slug) == (oracle.pk if oracle else None), slug
    assert lender_id_by_slug(slug=lender_b.slug) == lender_b.pk


def test_the_loan_lock_takes_the_loan_of_the_lender_asked(lender_a, lender_b) -> None:
    """``LOAN_LOCK``: the loan, only if it is the lender's, any lender's for none; and
    ``loan_row_lock``: a row of that loan, only if it is that loan's."""
    mine, theirs = signed_loan(lender_a), signed_loan(lender_b)
    attempt = started_attempt(mine)
    attempt.save()
    with transaction.atomic():
        for loan, lender in itertools.product((mine, theirs), (lender_a, lender_b, None)):
            params = {"loan": loan.pk, "lender": lender.pk if lender else None}
            oracle = Loan.objects.filter(pk=loan.pk)
            if lender is not None:
                oracle = oracle.filter(lender=lender)
            found = [row[0] for row in run(sql.LOAN_LOCK, params)]
            assert found == [row.pk for row in oracle]
            assert found == ([loan.pk] if lender in (None, loan.lender) else [])
        for loan in (mine, theirs):
            found = run(sql.loan_row_lock(PaymentAttempt), [attempt.pk, loan.pk])
            assert [row[0] for row in found] == ([attempt.pk] if loan == mine else [])


def test_a_replay_reads_every_payment_less_its_reversals_and_the_ledger_net(lender_a) -> None:
    """``PAYMENTS_IN`` and ``LEDGER_NET`` against the rows added up by hand: each payment of
    the loan with what the loan's reversals of its reference come to (one reversed twice,
    one never, reversals of a payment not arrived yet or of another loan's not counted), and
    the ledger lines by payment, installment, component and direction."""
    loan, other = signed_loan(lender_a), signed_loan(lender_a)
    now = timezone.now()
    for n, ref in enumerate(["a", "b", "c"]):
        payment_record(
            loan_id=loan.pk,
            amount=Money(Decimal("40.00") + n, lender_a.currency),
            channel="provider",
            provider="mpesa",
            provider_ref=ref,
            received_at=now - timedelta(hours=3 - n),
            actor=Actor.system(),
        )
    for on, reverses, ref, amount in (
        (loan, "a", "rev-1", "5.00"),
        (loan, "a", "rev-2", "7.50"),
        (loan, "c", "rev-3", "1.00"),
        (loan, "e", "rev-4", "2.00"),  # of a payment not arrived yet
        (other, "z", "rev-5", "3.00"),  # of another loan's
    ):
        payment_reverse(
            loan_id=on.pk,
            kind="refund",
            amount=Money(Decimal(amount), lender_a.currency),
            provider="mpesa",
            provider_ref=ref,
            payment_provider_ref=reverses,
            received_at=now,
            actor=Actor.system(),
        )
    reversed_by_ref: dict[tuple[str, str], Decimal] = {}
    for r in PaymentReversal.objects.filter(loan=loan):
        key = (r.provider, r.payment_provider_ref)
        reversed_by_ref[key] = reversed_by_ref.get(key, Decimal(0)) + r.amount
    oracle = sorted(
        (
            p.pk,
            p.received_at,
            p.provider,
            p.provider_ref,
            p.amount,
            reversed_by_ref.get((p.provider, p.provider_ref), Decimal(0)),
        )
        for p in Payment.objects.filter(loan=loan)
    )
    assert sorted(run(sql.PAYMENTS_IN, [loan.pk])) == oracle
    assert [row[5] for row in oracle] == [Decimal("12.50"), 0, Decimal("1.00")]
    lines: dict[tuple[int, int, str, str], Decimal] = {}
    for a in Allocation.objects.filter(loan=loan):
        key = (a.payment_id, a.installment_id, a.component, a.direction)
        lines[key] = lines.get(key, Decimal(0)) + a.amount
    found = {tuple(row[:4]): row[4] for row in run(sql.LEDGER_NET, [loan.pk])}
    assert found == lines
    assert {direction for *_, direction in lines} == {"credit", "debit"}


def test_the_restricted_loans_of_a_suspension_and_their_days(lender_a) -> None:
    """``SUSPENSION_RESTRICTED``: the lender's active loans above the rank given, in id order,
    each with its days overdue as the selector counts them."""
    signed = timezone.now() - timedelta(days=90)
    loans = [signed_loan(lender_a, signed_at=signed - timedelta(days=n * 9)) for n in range(4)]
    stages = [Stage.REMINDER, Stage.ALARM, Stage.LOCK, Stage.NONE]
    for loan, stage in zip(loans, stages, strict=True):
        Loan.objects.filter(pk=loan.pk).update(stage=stage)
    on = lender_local_date(lender=lender_a)
    for above in (Stage.NONE, Stage.REMINDER):
        rows = run(
            sql.SUSPENSION_RESTRICTED,
            {
                "lender": lender_a.pk,
                "bd": on,
                "order": array_literal(list(STAGE_ORDER)),
                "above": STAGE_ORDER.index(above) + 1,
            },
        )
        expected = [
            (
                loan.pk,
                stage.value,
                loan.policy_version_id,
                loan.customer_id,
                loan_days_overdue(loan=loan),
            )
            for loan, stage in zip(loans, stages, strict=True)
            if STAGE_ORDER.index(stage) > STAGE_ORDER.index(above)
        ]
        assert rows == expected


def test_the_stage_audit_rows_are_the_arrays_given() -> None:
    """``STAGE_AUDIT_ROWS``: one row per element of the parallel arrays, numbered from 1."""
    params = {
        "cause": "sweep",
        "bd": "2026-03-01",
        "loans": "{7,9}",
        "froms": "{none,alarm}",
        "tos": "{reminder,none}",
        "ds": "{2,0}",
        "pvs": "{3,3}",
        "paused": "{f,t}",
        "devices": "{11,NULL}",
        "vs": "{4,NULL}",
    }
    rows = [(n, target, json.loads(data)) for n, target, data in run(sql.STAGE_AUDIT_ROWS, params)]
    assert rows == [
        (
            1,
            "7",
            {
                "stage": {"old": "none", "new": "reminder"},
                "cause": "sweep",
                "days_overdue": 2,
                "business_date": "2026-03-01",
                "policy_version_id": 3,
                "paused": False,
                "device_id": 11,
                "device_version": 4,
            },
        ),
        (
            2,
            "9",
            {
                "stage": {"old": "alarm", "new": "none"},
                "cause": "sweep",
                "days_overdue": 0,
                "business_date": "2026-03-01",
                "policy_version_id": 3,
                "paused": True,
                "device_id": None,
                "device_version": None,
            },
        ),
    ]


# --- plans ------------------------------------------------------------------------------


@pytest.fixture
def many(lender_a) -> dict[str, Any]:
    """One active loan with its installments, beside ROWS draft loans of the same lender with
    twelve unpaid installments (their fee run done), a stage change and a webhook event each:
    enough rows that reading a table whole costs more than its index. Every table the
    statements read is analyzed, so the planner knows."""
    loan = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=60))
    now = timezone.now()
    loans, installments = Loan._meta.db_table, Installment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            pg.SQL(
                """
INSERT INTO {loans} (created_at, updated_at, lender_id, customer_id, product_id,
    policy_version_id, consent_id, shop_id, reference, status, currency, device_price_amount,
    down_payment_amount, financed_amount, start_date, signed_at, paid_off_at, idempotency_key,
    installments_count, frequency, interest_method, interest_rate_percent,
    origination_fee_percent, grace_days, late_fee_type, late_fee_value, late_fee_cap, stage,
    stage_changed_at, collateral_released_at)
SELECT l.created_at, l.updated_at, l.lender_id, l.customer_id, l.product_id,
    l.policy_version_id, NULL, l.shop_id, 'D-' || g, 'draft', l.currency, l.device_price_amount,
    l.down_payment_amount, l.financed_amount, l.start_date, l.signed_at, NULL, NULL,
    l.installments_count, l.frequency, l.interest_method, l.interest_rate_percent,
    l.origination_fee_percent, l.grace_days, l.late_fee_type, l.late_fee_value, l.late_fee_cap,
    'none', NULL, NULL
FROM {loans} AS l, generate_series(1, %s) AS g WHERE l.id = %s
"""
            ).format(loans=pg.Identifier(loans)),
            [ROWS, loan.pk],
        )
        cursor.execute(
            pg.SQL(
                """
INSERT INTO {installments} (created_at, updated_at, lender_id, loan_id, sequence, due_date,
    principal_amount, interest_amount, fee_amount, late_fee_amount, principal_paid,
    interest_paid, fee_paid, late_fee_paid, paid_at, late_from, late_fee_charged,
    late_fee_assessed_at)
SELECT i.created_at, i.updated_at, i.lender_id, l.id, i.sequence, i.due_date,
    i.principal_amount, i.interest_amount, i.fee_amount, 0, 0, 0, 0, 0, NULL, i.late_from, 0,
    NULL
FROM {loans} AS l JOIN {installments} AS i ON i.loan_id = %s
WHERE l.lender_id = %s AND l.status = 'draft'
"""
            ).format(loans=pg.Identifier(loans), installments=pg.Identifier(installments)),
            [loan.pk, lender_a.pk],
        )
        cursor.execute(
            pg.SQL(
                """
INSERT INTO {events} (created_at, updated_at, lender_id, provider, event_id, event_type, body,
    body_sha256, payment_id, reversal_id)
SELECT %s, %s, %s, 'mpesa', 'evt-' || g, 'payment.succeeded', '{{}}', '', NULL, NULL
FROM generate_series(1, %s) AS g
"""
            ).format(events=pg.Identifier(WebhookEvent._meta.db_table)),
            [now, now, lender_a.pk, ROWS],
        )
        cursor.execute(
            pg.SQL(
                """
INSERT INTO {changes} (created_at, updated_at, lender_id, loan_id, from_stage, to_stage, cause,
    days_overdue, business_date, policy_version_id, device_version)
SELECT %s, %s, l.lender_id, l.id, 'none', 'reminder', 'sweep', 1,
    %s::date - (l.id %% 365)::int, l.policy_version_id, NULL
FROM {loans} AS l WHERE l.lender_id = %s
"""
            ).format(
                changes=pg.Identifier(LoanStageChange._meta.db_table),
                loans=pg.Identifier(loans),
            ),
            [now, now, now.date(), lender_a.pk],
        )
        # every table the statements read, as this transaction sees them: what earlier tests
        # committed and the autovacuum analyzed since would otherwise steer the plans
        for model in READ:
            cursor.execute(pg.SQL("ANALYZE {}").format(pg.Identifier(model._meta.db_table)))
    ladder = Ladder.load(lender=lender_a, policy_version_ids={loan.policy_version_id})
    return {
        "loan": loan,
        "params": {
            "lender": lender_a.pk,
            "loan": loan.pk,
            "lo": loan.pk,
            "hi": loan.pk + 1,
            "ids": array_literal([loan.pk]),
            "loans": array_literal([loan.pk]),
            "bd": now.date(),
            "now": now,
            "until": now,
            "places": 2,
            "order": list(STAGE_ORDER),
            "tz": lender_a.timezone,
            "noticed_before": now,
            "p": "mpesa",
            "r": "ref-1",
            "t": now,
            **ladder.sql_params(),
        },
    }


READ = (
    Loan,
    Installment,
    Payment,
    PaymentReversal,
    LoanPause,
    LoanStageChange,
    WebhookEvent,
    Notification,
    Device,
    Customer,
    Lender,
    Shop,
    AuditEvent,
)


def plan_indexes(statement: pg.Composable, params: Any) -> set[str]:
    """The indexes the plan of ``statement`` reads (and a conflict's arbiters), sequential scans
    off for this transaction."""

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(pg.SQL("EXPLAIN (FORMAT JSON) {}").format(statement), params)
        return plan_indexes_of(cursor.fetchone()[0])


def plan_indexes_of(node: Any) -> set[str]:
    """The index names in the JSON plan ``node``."""
    if isinstance(node, list):
        return set().union(*map(plan_indexes_of, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["Index Name"]} if "Index Name" in node else set()
    found |= set(node.get("Conflict Arbiter Indexes", ()))
    return found.union(*map(plan_indexes_of, node.values()))


# a name ending in ``*``: an index Django named for a foreign key (a hash follows)
PAUSES_BY_LOAN = ("collections_loanpause_loan_id_*", "pause_one_open_per_kind", "pause_active")
PLANS = [
    # (statement, the indexes it is written for, positional parameters if any)
    ("RAISE_RANGE", {"loan_active_by_id", "installment_unpaid_by_loan"}, None),
    ("SWEEP_FORECAST", {"loan_active_by_id", "installment_unpaid_by_loan"}, None),
    ("SWEEP_AGAIN", {"installment_unpaid_by_loan"}, None),
    ("CLASSIFY_ONE", {"installment_unpaid_by_loan"}, None),
    ("IDS_LOCK", {"collections_loan_pkey"}, None),
    ("PAUSE_ENDS_LOCK", {"collections_loan_pkey"}, None),
    ("PAUSES_CLOSE", {PAUSES_BY_LOAN}, None),
    ("RAISED", {"stage_change_one_sweep_per_day"}, None),
    ("FEE_LOANS_LOCK", {"installment_fee_not_reached"}, None),
    ("FEE_REACH", {"installment_fee_not_reached", "collections_payment_loan_id_*"}, None),
    ("FEE_REACH_FOR_PAYMENT", {"installment_fee_not_reached"}, None),
    (
        "PAYMENT_POSITION",
        {
            "collections_payment_loan_id_*",
            "collections_paymentreversal_loan_id_*",
            "collections_installment_loan_id_*",
        },
        None,
    ),
    ("SUSPENSION_RESTRICTED", {"loan_active_by_id", "installment_unpaid_by_loan"}, "suspension"),
    ("STAGE_COUNTS", {"loan_active_by_id"}, None),
    ("PAR", {"loan_active_by_id", "collections_installment_loan_id_*"}, "portfolio"),
    ("PAR30_BY_SHOP", {"loan_active_by_id", "collections_installment_loan_id_*"}, "portfolio"),
    (
        "PAR30_BY_MONTH_OF_SALE",
        {"loan_active_by_id", "collections_installment_loan_id_*"},
        "portfolio",
    ),
    ("ROLL_RATES", {"loan_lender_status_idx", "collections_installment_loan_id_*"}, "portfolio"),
    ("CURE_RATES", {"stage_change_day", "collections_loanstagechange_loan_id_*"}, "portfolio"),
    ("UNLOCK_TIMES", {"devices_device_loan_id_*"}, "portfolio"),
    ("RANGE_STARTS", {"loan_active_by_id"}, "range"),
    ("WEBHOOK_EVENT_GET", {"webhook_event_once"}, "webhook"),
    ("LOAN_LOCK_BY_REFERENCE", {"loan_reference_unique_per_lender"}, "reference"),
    ("INSTALLMENTS_LOCK", {"collections_installment_loan_id_*"}, "loan"),
    ("PAYMENT_INSERT", {"payment_provider_ref_unique_per_lender"}, "payment"),
    (
        "PAYMENTS_IN",
        {"collections_payment_loan_id_*", "collections_paymentreversal_loan_id_*"},
        "loan",
    ),
    ("LEDGER_NET", {"collections_allocation_loan_id_*"}, "loan"),
    ("ATTEMPT_BY_REF", {"payment_attempt_ref_once"}, "attempt_ref"),
    ("ATTEMPT_BY_KEY", {"collections_paymentattempt_key_key"}, "attempt_key"),
    ("LOAN_LOCK", {"collections_loan_pkey"}, "loan_lock"),
    ("LENDER_ID_BY_SLUG", {"lenders_lender_slug_key"}, "slug"),
    ("ATTEMPT_SETTLE", {"collections_paymentattempt_pkey"}, "attempt_settle"),
    (
        "ATTEMPT_PAID_BY_QUERY",
        {"collections_paymentattempt_loan_id_*", "collections_payment_pkey"},
        "paid_by_query",
    ),
    (
        "PAYMENT_RECEIPT",
        {"collections_payment_pkey", "collections_loan_pkey", "collections_installment_loan_id_*"},
        "loan",
    ),
    ("LOANS_STAGE_NONE", {"collections_loan_pkey"}, "ids"),
    ("LOANS_STAGE_REMINDER", {"collections_loan_pkey"}, "ids"),
]


def covers(found: set[str], wanted: set[str | tuple[str, ...]]) -> bool:
    """Whether ``found`` holds every index ``wanted``: a name, a prefix (``*``), or any of a
    tuple of them."""

    def has(want: str) -> bool:
        return any(n.startswith(want[:-1]) for n in found) if want.endswith("*") else want in found

    return all(any(map(has, want)) if isinstance(want, tuple) else has(want) for want in wanted)


def matches(name: str, want: str | tuple[str, ...]) -> bool:
    """Whether index ``name`` is one ``want`` names (a name, a prefix ending in ``*``, or any
    of a tuple of them)."""
    if isinstance(want, tuple):
        return any(matches(name, each) for each in want)
    return name.startswith(want[:-1]) if want.endswith("*") else name == want


def plan_served_by(plan: Callable[[], set[str]], wanted: set[str | tuple[str, ...]]) -> set[str]:
    """The indexes of ``plan()``, once it reads every index ``wanted``. On test tables of a
    few thousand rows several indexes can cost the planner about the same, and its choice
    between them is a coin toss (CI saw several sides); where it picks another index, that
    rival (or the unique constraint it backs) is dropped inside a savepoint, rolled back here,
    and the statement planned again. What is checked is that the statement is served by the
    index it was written for. A primary key, or a rival others depend on, stays."""
    savepoint = transaction.savepoint()
    try:
        found = plan()
        for _ in range(8):
            if covers(found, wanted):
                return found
            rivals = {n for n in found if not any(matches(n, w) for w in wanted)}
            dropped = [name for name in sorted(rivals) if _drop_index(name)]
            if not dropped:
                return found
            found = plan()
        return found
    finally:
        transaction.savepoint_rollback(savepoint)


def _drop_index(name: str) -> bool:
    """Drop index ``name`` (with its unique constraint, if it backs one) in a savepoint of
    its own; whether it went."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT contype, conrelid::regclass::text FROM pg_constraint WHERE conname = %s",
            [name],
        )
        constraint = cursor.fetchone()
        if constraint is not None and constraint[0] == "p":
            return False
        if constraint is None:
            statement = pg.SQL("DROP INDEX {}").format(pg.Identifier(name))
        else:
            statement = pg.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                pg.Identifier(constraint[1]), pg.Identifier(name)
            )
        savepoint = transaction.savepoint()
        try:
            # the test's rows leave deferred foreign-key checks pending, and ALTER TABLE
            # refuses a table with pending trigger events: run them now
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(statement)
        except DatabaseError:  # another object depends on it (a foreign key)
            transaction.savepoint_rollback(savepoint)
            return False
        transaction.savepoint_commit(savepoint)
        return True


def test_each_statement_uses_the_index_it_was_written_for(many) -> None:
    loan, now = many["loan"], timezone.now()
    params = {
        None: many["params"],
        "suspension": {**many["params"], "order": array_literal(STAGE_ORDER), "above": 1},
        "portfolio": {
            **many["params"],
            "on": now.date(),
            "a": now.date() - timedelta(days=30),
            "b": now.date(),
            "a_end": now - timedelta(days=30),
            "b_end": now,
            "window": timedelta(days=7),
        },
        "loan": [loan.pk],
        "range": [loan.lender_id, 100],
        "webhook": [loan.lender_id, "mpesa", "evt-7"],
        "reference": [loan.lender_id, loan.reference],
        "attempt_ref": [loan.lender_id, "mpesa", "ws_CO_1"],
        "attempt_key": [uuid.uuid4(), loan.lender_id, "stripe"],
        "loan_lock": {"loan": loan.pk, "lender": loan.lender_id},
        "slug": ["lender-a"],
        "paid_by_query": {
            "loan": loan.pk,
            "provider": "mpesa",
            "amount": Decimal("10.00"),
            "since": now,
        },
        "attempt_settle": {
            "id": 1,
            "status": "paid",
            "detail": "",
            "settled_at": now,
            "payment": None,
            "receipt": "",
        },
        "payment": [None] * 12,
        "ids": [now, now, array_literal([loan.pk])],
    }
    plans = {
        name: plan_served_by(
            lambda name=name, given=given: plan_indexes(getattr(sql, name), params[given]),
            wanted,
        )
        for name, wanted, given in PLANS
    }
    missed = {name: plans[name] for name, wanted, _ in PLANS if not covers(plans[name], wanted)}
    assert missed == {}


def test_the_lock_notice_rule_reads_the_notices_by_loan(many) -> None:
    """``LOCK_NOTICED_BY``, as the lock-tomorrow work queue runs it (a condition of its
    query): the notifications by loan, the oldest unpaid installment by the unpaid index."""
    loan = many["loan"]
    queue = loan_work_queue(
        Loan.objects.filter(lender_id=loan.lender_id),
        queue=WorkQueue.LOCK_TOMORROW,
        today=timezone.now().date() + timedelta(days=400),
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    wanted: set[str | tuple[str, ...]] = {"notification_*", "installment_unpaid_by_loan"}
    found = plan_served_by(
        lambda: plan_indexes_of(json.loads(queue.explain(format="json"))), wanted
    )
    assert covers(found, wanted), found


BOOK = 3000  # active loans beside ``many``'s drafts: a book where the released are none


def test_released_staged_reads_the_partial_index_of_released_loans(many) -> None:
    """``RELEASED_STAGED`` is written for ``loan_released_active``. Over a sweep's range of a
    book of thousands of active loans, none released (as in a lender's book), that index
    reads nothing, where the primary key or the active loans' index would read them all."""
    loan = many["loan"]
    challenges = ConsentChallenge.objects.bulk_create(
        copies(loan.consent.challenge, [{} for _ in range(BOOK)])
    )
    consents = ConsentRecord.objects.bulk_create(
        copies(loan.consent, [{"challenge_id": c.pk} for c in challenges])
    )
    Loan.objects.bulk_create(
        copies(
            loan,
            [
                {"reference": f"A-{n}", "consent_id": c.pk, "idempotency_key": None}
                for n, c in enumerate(consents)
            ],
        )
    )
    with connection.cursor() as cursor:
        cursor.execute(pg.SQL("ANALYZE {}").format(pg.Identifier(Loan._meta.db_table)))
    # a sweep's range spans thousands of ids: here every loan of the lender
    whole_book = {**many["params"], "lo": 0, "hi": 2**62}
    found = plan_served_by(
        lambda: plan_indexes(sql.RELEASED_STAGED, whole_book), {"loan_released_active"}
    )
    assert "loan_released_active" in found, found
