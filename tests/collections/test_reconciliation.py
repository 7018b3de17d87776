"""The daily reconciliation report: a hand-built day against the loopback Stripe and the
M-Pesa paybill gives exactly its differences; a day built again replaces its report; a
provider that fails marks its report failed and stops no other; lenders never mix."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfoNotFoundError

import pytest
import time_machine

from apps.audit.models import AuditEvent
from apps.collections.models import ReconciliationReport
from apps.collections.services import (
    payment_record,
    reconciliation_report_build,
    reconciliation_reports_build,
)
from apps.collections.tasks import reconciliation_reports_build_task
from apps.core.actor import Actor
from apps.core.money import Money
from apps.core.schedule import schedule
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_local_date
from tests.collections.daraja import paybill_for
from tests.collections.factories import signed_loan
from tests.collections.reconciliation import (
    a_day_of_payments,
    at,
    card_paid,
    stripe_account,
    stripe_payment_recorded,
    the_day,
)
from tests.collections.stripe import SECRET_KEY, checkout_started, deliver

pytestmark = pytest.mark.django_db

OTHER_KEY = "sk_test_51LenderOther000000ZyXwVuTs"


def build(lender, provider, day) -> ReconciliationReport:
    return reconciliation_report_build(
        lender_id=lender.pk, provider=provider, day=day, actor=Actor.system()
    )


def kinds(report: ReconciliationReport) -> dict[str, str]:
    return {d["reference"]: d["kind"] for d in report.differences}


@pytest.fixture
def day(client, lender_a, stripe_fake, daraja):
    return a_day_of_payments(client, lender_a, stripe_fake, daraja, SECRET_KEY)


def test_the_day_shows_exactly_its_differences(lender_a, stripe_fake, day) -> None:
    stripe = build(lender_a, "stripe", day.day)
    assert kinds(stripe) == {
        day.stripe_only: "missing_here",
        day.ours_only: "missing_at_provider",
        day.differs: "amount_differs",
    }
    intents = stripe_fake.payment_intents
    settled = [Decimal(intents[i]["amount_received"]).scaleb(-2) for i in intents]
    assert (stripe.status, stripe.failure_code) == ("built", "")
    assert (stripe.provider_count, stripe.provider_total) == (3, sum(settled))
    # ours: the matched one, the one Stripe lacks, and the one with another amount
    assert stripe.our_count == 3
    assert stripe.our_total == settled[0] + 250 + settled[2] - 1
    assert stripe.difference_count == 3
    by_kind = {d["kind"]: d for d in stripe.differences}
    assert by_kind["missing_here"]["loan"] == day.loans[1].pk  # named by the intent's metadata
    assert by_kind["missing_at_provider"]["loan"] == day.loans[3].pk
    assert by_kind["amount_differs"]["amount"] == str(settled[2] - 1)
    assert by_kind["amount_differs"]["provider_amount"] == str(settled[2])
    assert by_kind["amount_differs"]["provider_currency"] == "KES"

    mpesa = build(lender_a, "mpesa", day.day)
    assert (mpesa.provider_count, mpesa.provider_total) == (None, None)  # Daraja lists nothing
    assert (mpesa.our_count, mpesa.our_total) == (1, Decimal(700))
    assert mpesa.differences == [
        {
            "kind": "unmatched",
            "reference": day.paybill_receipt,
            "amount": "450.00",
            "currency": "KES",
            "provider_amount": "",
            "provider_currency": "",
            "received_at": mpesa.differences[0]["received_at"],
            "loan": None,
            "loan_reference": "",
            "account": "SC-NOSUCH99",
        }
    ]
    received = mpesa.differences[0]["received_at"]
    assert lender_local_date(lender=lender_a, at=datetime.fromisoformat(received)) == day.day


def test_the_report_is_audited_with_its_counts_and_nothing_about_a_customer(lender_a, day) -> None:
    report = build(lender_a, "stripe", day.day)
    event = AuditEvent.objects.get(action="collections.reconciliation.reported")
    assert (event.lender_id, event.target_id) == (lender_a.pk, str(report.pk))
    assert event.data == {
        "provider": "stripe",
        "day": day.day.isoformat(),
        "status": "built",
        "failure_code": "",
        "our_count": 3,
        "provider_count": 3,
        "differences": {"missing_here": 1, "missing_at_provider": 1, "amount_differs": 1},
    }


def test_building_the_day_again_replaces_its_report(client, lender_a, stripe_fake, day) -> None:
    first = build(lender_a, "stripe", day.day)
    # Stripe delivers the lost webhook at last: the payment is ours now, on its own day
    events = [e for e in stripe_fake.events if e["data"]["object"].get("id") == day.stripe_only]
    for event in events:
        assert deliver(client, stripe_fake, lender_a, event).status_code == 200
    again = build(lender_a, "stripe", day.day)
    assert again.pk == first.pk
    assert ReconciliationReport.objects.count() == 1
    assert kinds(again) == {day.ours_only: "missing_at_provider", day.differs: "amount_differs"}
    assert again.our_count == 4
    assert again.generated_at > first.generated_at
    assert AuditEvent.objects.filter(action="collections.reconciliation.reported").count() == 2


def test_a_paybill_payment_placed_since_is_no_longer_unmatched(lender_a, day) -> None:
    payment_record(
        loan_id=day.loans[0].pk,
        lender_id=lender_a.pk,
        amount=Money(Decimal(450), "KES"),
        channel="provider",
        provider="mpesa",
        provider_ref=day.paybill_receipt,
        received_at=at(lender_a, day.day, 12),
        actor=Actor.system(),
    )
    assert build(lender_a, "mpesa", day.day).differences == []


def test_a_payment_charged_before_midnight_and_called_back_after_differs_on_neither_day(
    client, lender_a, stripe_fake
) -> None:
    day = the_day(lender_a)
    with time_machine.travel(at(lender_a, day, 9), tick=True):
        stripe_account(lender_a, stripe_fake, SECRET_KEY)
        loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    with time_machine.travel(at(lender_a, day, 24) - timedelta(seconds=3), tick=False):
        attempt = checkout_started(loan)
        events = stripe_fake.pay_card(attempt.attempt_ref)
    after_midnight = int(at(lender_a, day, 24).timestamp()) + 2
    with time_machine.travel(after_midnight, tick=True):
        for event in events:
            event["created"] = after_midnight  # Stripe's event, dated after the charge
            assert deliver(client, stripe_fake, lender_a, event).status_code == 200
    on_the_day = build(lender_a, "stripe", day)
    next_day = build(lender_a, "stripe", day + timedelta(days=1))
    assert (on_the_day.provider_count, on_the_day.our_count) == (1, 0)
    assert (next_day.provider_count, next_day.our_count) == (0, 1)
    assert on_the_day.differences == next_day.differences == []


def test_an_oxxo_voucher_paid_days_after_it_was_issued_matches_on_the_day_it_was_paid(
    client, lender_b, stripe_fake
) -> None:
    day = the_day(lender_b)
    with time_machine.travel(at(lender_b, day - timedelta(days=2), 9), tick=True):
        stripe_account(lender_b, stripe_fake, OTHER_KEY)
        loan = signed_loan(lender_b, price="3500", down="500", installments=3)
        attempt = checkout_started(loan)
        for event in stripe_fake.issue_oxxo(attempt.attempt_ref):
            assert deliver(client, stripe_fake, lender_b, event).status_code == 200
    with time_machine.travel(at(lender_b, day, 15), tick=True):
        for event in stripe_fake.settle_oxxo(attempt.attempt_ref):
            assert deliver(client, stripe_fake, lender_b, event).status_code == 200
    report = build(lender_b, "stripe", day)
    assert (report.provider_count, report.our_count, report.differences) == (1, 1, [])
    assert report.provider_total == report.our_total == attempt.amount
    issued = build(lender_b, "stripe", day - timedelta(days=2))
    assert (issued.provider_count, issued.our_count, issued.differences) == (0, 0, [])


def test_a_lenders_report_never_shows_another_lenders_payments(
    client, lender_a, lender_b, stripe_fake, day
) -> None:
    with time_machine.travel(at(lender_b, day.day, 10), tick=True):
        stripe_account(lender_b, stripe_fake, OTHER_KEY)
        loan_b = signed_loan(lender_b, price="3500", down="500", installments=3)
    with time_machine.travel(at(lender_b, day.day, 11), tick=True):
        card_paid(client, stripe_fake, loan_b)
        stripe_payment_recorded(
            loan_b, "pi_LenderBOnly0001", Decimal(99), at(lender_b, day.day, 11)
        )
    report_a = build(lender_a, "stripe", day.day)
    assert set(kinds(report_a)) == {day.stripe_only, day.ours_only, day.differs}
    assert (report_a.provider_count, report_a.our_count) == (3, 3)
    report_b = build(lender_b, "stripe", day.day)
    assert kinds(report_b) == {"pi_LenderBOnly0001": "missing_at_provider"}
    assert (report_b.provider_count, report_b.our_count, report_b.currency) == (1, 2, "MXN")


def test_a_provider_that_fails_marks_its_report_failed_and_stops_no_other(
    client, lender_a, lender_b, stripe_fake, day
) -> None:
    with time_machine.travel(at(lender_b, day.day, 10), tick=True):
        stripe_account(lender_b, stripe_fake, OTHER_KEY)
        card_paid(client, stripe_fake, signed_loan(lender_b, price="3500", down="500"))
    stripe_fake.api_keys.discard(SECRET_KEY)  # lender A's key revoked at Stripe
    reports = reconciliation_reports_build(day=day.day, actor=Actor.system())
    found = {(r.lender_id, r.provider): r for r in reports}
    assert set(found) == {(lender_a.pk, "mpesa"), (lender_a.pk, "stripe"), (lender_b.pk, "stripe")}
    failed = found[lender_a.pk, "stripe"]
    assert (failed.status, failed.failure_code) == ("failed", "401")
    assert (failed.provider_count, failed.provider_total, failed.our_count) == (None, None, 3)
    assert failed.differences == []  # nothing to compare with
    assert found[lender_a.pk, "mpesa"].difference_count == 1
    assert (found[lender_b.pk, "stripe"].status, found[lender_b.pk, "stripe"].provider_count) == (
        "built",
        1,
    )


def test_an_account_no_longer_in_use_fails_its_report_with_that_code(lender_a) -> None:
    report = build(lender_a, "stripe", the_day(lender_a))
    assert (report.status, report.failure_code) == ("failed", "provider_not_configured")


def test_the_nightly_task_builds_yesterday_in_each_lenders_timezone(
    lender_a, stripe_fake, day
) -> None:
    with time_machine.travel(at(lender_a, day.day + timedelta(days=1), 5), tick=True):
        assert reconciliation_reports_build_task() == 2
    days = set(ReconciliationReport.objects.values_list("lender_id", "provider", "day"))
    assert days == {(lender_a.pk, "mpesa", day.day), (lender_a.pk, "stripe", day.day)}
    entry = schedule(lenders=[])["collections: reconciliation reports"]
    assert entry[:3] == (
        "collections.reconciliation_reports_build",
        {"minute": "30", "hour": "4"},
        "UTC",
    )


def test_a_day_with_nothing_through_a_provider_is_an_empty_report(lender_a, stripe_fake) -> None:
    stripe_account(lender_a, stripe_fake, SECRET_KEY)
    report = build(lender_a, "stripe", the_day(lender_a))
    assert (report.status, report.our_count, report.our_total) == ("built", 0, 0)
    assert (report.provider_count, report.provider_total, report.differences) == (0, 0, [])


def test_a_report_that_breaks_unexpectedly_stops_no_other_and_is_raised_after(
    lender_a, lender_b
) -> None:
    paybill_for(lender_a)
    paybill_for(lender_b)
    Lender.objects.filter(pk=lender_a.pk).update(timezone="Mars/Olympus_Mons")  # a damaged row
    with pytest.raises(ZoneInfoNotFoundError):
        reconciliation_reports_build(day=the_day(lender_b), actor=Actor.system())
    built = ReconciliationReport.objects.values_list("lender_id", "provider")
    assert list(built) == [(lender_b.pk, "mpesa")]


def test_a_pushs_money_we_could_not_place_is_listed_as_unmatched(client, lender_a, daraja) -> None:
    from urllib.parse import urlsplit

    from tests.collections.daraja import call, push_started

    paybill_for(lender_a)
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    body = daraja.stk_callback_body(push, amount=push.amount + 5)  # not what was asked
    call(client, urlsplit(push.callback_url).path, body)
    report = build(lender_a, "mpesa", lender_local_date(lender=lender_a))
    assert [(d["kind"], d["reference"]) for d in report.differences] == [
        ("unmatched", push.receipt)
    ]
