"""M-Pesa end to end against the loopback Daraja: an STK push started for a loan, Daraja's
callbacks on the lender's secret path (STK and C2B paybill payments), and every callback
that must not move money."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import time_machine
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.errors import NothingToPay, PaymentAlreadyStarted, PaymentStartFailed
from apps.collections.models import Payment, PaymentAttempt, WebhookEvent
from apps.collections.selectors import loan_outstanding, loan_overview
from apps.collections.services import (
    payment_attempt_reconcile,
    payment_attempt_start,
    payment_record,
)
from apps.core.actor import Actor, ActorType
from tests.collections.daraja import PHONE, SHORTCODE, call, path, paybill_for, push_started
from tests.collections.factories import signed_loan

pytestmark = pytest.mark.django_db

CUSTOMER = Actor(type=ActorType.CUSTOMER, id="1")


@pytest.fixture
def loan(lender_a, daraja):
    paybill_for(lender_a)
    return signed_loan(lender_a, price="3500.50", down="500", installments=3)


def refused(problem: str) -> int:
    return AuditEvent.objects.filter(
        action="collections.webhook.rejected", data__problem=problem
    ).count()


def stk_path(daraja, attempt) -> str:
    return urlsplit(daraja.pushes[attempt.attempt_ref].callback_url).path


def test_a_push_asks_the_customers_phone_for_what_is_due_rounded_up(daraja, loan) -> None:
    attempt = push_started(loan)
    push = daraja.pushes[attempt.attempt_ref]
    due = loan_overview(loan=loan).pay_amount.amount
    assert due != due.to_integral_value()  # cents, which M-Pesa cannot take
    assert (push.amount, push.phone, push.account_reference) == (
        int(due) + 1,
        PHONE.removeprefix("+"),
        loan.reference,
    )
    assert (attempt.status, attempt.amount) == ("started", Decimal(int(due) + 1))
    assert "/daraja/" in push.callback_url
    assert "mpesa" not in push.callback_url  # Daraja refuses such an address
    started = AuditEvent.objects.get(action="collections.payment_attempt.started")
    assert started.data["provider_id"] == attempt.attempt_ref
    assert PHONE.removeprefix("+") not in str(started.data)  # no phone number on the record


def test_a_second_push_within_two_minutes_is_refused(daraja, loan) -> None:
    push_started(loan)
    with pytest.raises(PaymentAlreadyStarted):
        push_started(loan)
    assert len(daraja.pushes) == 1


def test_a_push_daraja_refuses_is_kept_as_failed_and_says_nothing_was_charged(daraja, loan) -> None:
    with pytest.raises(PaymentStartFailed):
        payment_attempt_start(
            loan_id=loan.pk,
            lender_id=loan.lender_id,
            provider="mpesa",
            actor=CUSTOMER,
            phone="+254612345678",  # not a Safaricom mobile number: Daraja says 400.002.02
        )
    attempt = PaymentAttempt.objects.get()
    assert (attempt.status, attempt.detail) == ("failed", "400.002.02")


def test_nothing_to_pay_starts_nothing(daraja, lender_a) -> None:
    paybill_for(lender_a)
    loan = signed_loan(lender_a, price="3000", down="500", installments=1)
    payment_record(
        loan_id=loan.pk,
        amount=loan_outstanding(loan=loan),
        channel="manual",
        provider="manual",
        provider_ref="cash-1",
        received_at=timezone.now(),
        actor=Actor.system(),
    )
    with pytest.raises(NothingToPay):
        push_started(loan)
    assert daraja.pushes == {}


def test_the_customers_pin_pays_the_loan_with_the_mpesa_receipt_as_reference(
    client, daraja, loan
) -> None:
    attempt = push_started(loan)
    before = loan_outstanding(loan=loan).amount
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    response = call(client, stk_path(daraja, attempt), daraja.stk_callback_body(push))
    assert response.status_code == 200
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    payment = Payment.objects.get()
    assert (payment.provider, payment.provider_ref, payment.receipt_ref, payment.amount) == (
        "mpesa",
        push.receipt,
        push.receipt,
        Decimal(push.amount),
    )
    attempt.refresh_from_db()
    assert (attempt.status, attempt.payment, attempt.receipt) == ("paid", payment, push.receipt)
    assert loan_outstanding(loan=loan).amount == before - push.amount
    # on the record once: the payment's own event names the push it settles
    received = AuditEvent.objects.get(action="collections.payment.received")
    assert (received.data["attempt"], received.data["attempt_paid_by"]) == (
        str(attempt.key),
        "callback",
    )
    assert not AuditEvent.objects.filter(action="collections.payment_attempt.settled").exists()


def test_the_same_callback_five_times_pays_once(client, daraja, loan) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    body = daraja.stk_callback_body(daraja.pushes[attempt.attempt_ref])
    answers = [call(client, stk_path(daraja, attempt), body).status_code for _ in range(5)]
    assert answers == [200] * 5
    assert (Payment.objects.count(), WebhookEvent.objects.count()) == (1, 1)


def test_a_cancelled_prompt_closes_the_attempt_and_moves_no_money(client, daraja, loan) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 1032, callback=False)
    body = daraja.stk_callback_body(daraja.pushes[attempt.attempt_ref])
    assert call(client, stk_path(daraja, attempt), body).status_code == 200
    attempt.refresh_from_db()
    assert (attempt.status, attempt.detail) == ("failed", "1032: Request cancelled by user")
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(
    ("tamper", "status", "problem"),
    [
        ("wrong_token", 403, "path_token_invalid"),
        ("other_lenders_token", 403, "path_token_invalid"),
        ("outside_allow_list", 403, "source_not_allowed"),
        ("not_json", 400, "malformed"),
        ("not_a_callback", 400, "malformed"),
    ],
)
def test_callbacks_not_from_safaricom_are_refused_audited_and_store_nothing(
    client, daraja, lender_b, loan, tamper, status, problem
) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    body = daraja.stk_callback_body(daraja.pushes[attempt.attempt_ref])
    url, ip = stk_path(daraja, attempt), "127.0.0.1"
    lender_slug = loan.lender.slug
    if tamper == "wrong_token":
        url = url.replace(url.split("/")[-3], "0" * 40)
    elif tamper == "other_lenders_token":  # lender B's valid token on lender A's path
        url = url.replace(url.split("/")[-3], path(lender_b, "stk").split("/")[-3])
    elif tamper == "outside_allow_list":
        ip = "41.90.1.2"
    if tamper == "not_json":
        response = client.post(url, b"{nope", content_type="application/json", REMOTE_ADDR=ip)
    else:
        response = call(client, url, {"Body": {}} if tamper == "not_a_callback" else body, ip=ip)
    assert response.status_code == status, response.content
    assert Payment.objects.count() == WebhookEvent.objects.count() == 0
    rejection = AuditEvent.objects.get(action="collections.webhook.rejected")
    assert rejection.data["problem"] == problem
    assert rejection.lender_id is None  # an unverified caller never writes a lender's chain
    assert lender_slug in rejection.data["lender"]


@pytest.mark.parametrize("case", ["amount", "unknown_push", "receipt_seen"])
def test_verified_callbacks_that_do_not_match_are_answered_200_and_apply_nothing(
    client, daraja, loan, case
) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    url = stk_path(daraja, attempt)
    if case == "amount":
        body, problem = daraja.stk_callback_body(push, amount=push.amount - 1), "amount_mismatch"
    elif case == "unknown_push":
        body = daraja.stk_callback_body(push)
        body["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_999999999999"
        problem = "unknown_attempt"
    else:  # a second push reports the first one's receipt
        assert call(client, url, daraja.stk_callback_body(push)).status_code == 200
        later = timezone.now() + timedelta(minutes=3)
        with time_machine.travel(later):
            second = push_started(loan)
        daraja.settle(second.attempt_ref, 0, callback=False)
        other = daraja.pushes[second.attempt_ref]
        other.receipt, other.amount = push.receipt, push.amount
        body, problem = daraja.stk_callback_body(other), "receipt_seen_before"
        second.amount = Decimal(push.amount)
        PaymentAttempt.objects.filter(pk=second.pk).update(amount=push.amount)
    payments = Payment.objects.count()
    response = call(client, url, body)
    assert response.status_code == 200
    assert problem in response.json()["ResultDesc"]
    assert Payment.objects.count() == payments
    assert refused(problem) == 1
    rejection = AuditEvent.objects.get(action="collections.webhook.rejected")
    assert rejection.lender_id == loan.lender_id  # verified: on the lender's own chain


def test_a_push_nobody_called_back_about_is_asked_after_and_applied_once(
    client, daraja, loan
) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)  # Daraja's callback is lost
    later = timezone.now() + timedelta(minutes=5)
    assert payment_attempt_reconcile(attempt_id=attempt.pk, actor=Actor.system(), now=later) == (
        "paid"
    )
    payment = Payment.objects.get()
    assert payment.provider_ref == attempt.attempt_ref  # the query names no receipt
    # the callback turns up after all: nothing more is paid, the receipt is kept
    push = daraja.pushes[attempt.attempt_ref]
    assert call(client, stk_path(daraja, attempt), daraja.stk_callback_body(push)).status_code
    assert Payment.objects.count() == 1
    attempt.refresh_from_db()
    assert (attempt.status, attempt.receipt) == ("paid", push.receipt)


def test_a_push_still_unanswered_is_asked_again_then_expires(daraja, loan) -> None:
    attempt = push_started(loan)
    at = timezone.now()
    assert payment_attempt_reconcile(
        attempt_id=attempt.pk, actor=Actor.system(), now=at + timedelta(minutes=5)
    ) == ("started")
    attempt.refresh_from_db()
    assert attempt.checked_at is not None
    assert (
        payment_attempt_reconcile(
            attempt_id=attempt.pk, actor=Actor.system(), now=at + timedelta(minutes=31)
        )
        == "expired"
    )
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(("provider_says", "applied"), [(0, True), (1032, False)])
def test_a_late_callback_for_an_expired_push_is_applied_only_if_daraja_confirms_it(
    client, daraja, loan, provider_says, applied
) -> None:
    attempt = push_started(loan)
    payment_attempt_reconcile(
        attempt_id=attempt.pk, actor=Actor.system(), now=timezone.now() + timedelta(minutes=31)
    )
    daraja.settle(attempt.attempt_ref, provider_says, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    push.result_code = 0  # the callback says paid, whatever Daraja's own records say
    push.receipt = push.receipt or "SLATE00001"
    body = daraja.stk_callback_body(push)
    push.result_code = provider_says
    assert call(client, stk_path(daraja, attempt), body).status_code == 200
    assert Payment.objects.count() == (1 if applied else 0)
    assert refused("not_confirmed") == (0 if applied else 1)


# --- C2B: the paybill from the M-Pesa menu ---------------------------------------------


def test_a_paybill_payment_validated_then_confirmed_pays_the_loan_typed_loosely(
    client, daraja, loan
) -> None:
    typed = loan.reference.replace("-", "").lower()  # "sc2345abcd": as a customer types it
    body = daraja.c2b_body(shortcode=SHORTCODE, account=typed, amount="700")
    check = call(client, path(loan.lender, "c2b-validation"), body)
    assert check.json() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    assert Payment.objects.count() == 0  # validation only asks
    done = call(client, path(loan.lender, "c2b-confirmation"), body)
    assert done.status_code == 200
    payment = Payment.objects.get()
    assert (payment.loan, payment.provider_ref, payment.amount) == (
        loan,
        body["TransID"],
        Decimal(700),
    )


def test_a_paybill_payment_to_an_unknown_account_is_refused_before_the_money_moves(
    client, daraja, loan
) -> None:
    body = daraja.c2b_body(shortcode=SHORTCODE, account="SC-NOSUCH99", amount="700")
    answer = call(client, path(loan.lender, "c2b-validation"), body).json()
    assert answer == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}


def test_a_confirmed_payment_naming_no_loan_is_kept_for_the_back_office(
    client, daraja, loan
) -> None:
    body = daraja.c2b_body(shortcode=SHORTCODE, account="SC-NOSUCH99", amount="700")
    assert call(client, path(loan.lender, "c2b-confirmation"), body).status_code == 200
    assert Payment.objects.count() == 0
    stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.payment) == (f"c2b:{body['TransID']}", None)
    unmatched = AuditEvent.objects.get(action="collections.payment.unmatched")
    assert (unmatched.lender_id, unmatched.data["reference"]) == (loan.lender_id, body["TransID"])


def test_a_paybill_payment_to_another_paybill_is_refused(client, daraja, loan) -> None:
    body = daraja.c2b_body(shortcode="600000", account=loan.reference, amount="700")
    response = call(client, path(loan.lender, "c2b-confirmation"), body)
    assert response.status_code == 200
    assert Payment.objects.count() == 0
    assert refused("account_mismatch") == 1


def test_the_c2b_urls_registered_with_daraja_are_the_products_callback_paths(daraja, loan) -> None:
    from apps.integrations.payments.registry import adapter_for, callback_url

    adapter = adapter_for(lender_id=loan.lender_id, lender_slug=loan.lender.slug, provider="mpesa")
    confirmation = callback_url(
        provider="mpesa", lender_slug=loan.lender.slug, route="c2b-confirmation"
    )
    validation = callback_url(
        provider="mpesa", lender_slug=loan.lender.slug, route="c2b-validation"
    )
    adapter.register_c2b_urls(confirmation_url=confirmation, validation_url=validation)
    assert daraja.c2b_urls[SHORTCODE] == (confirmation, validation)


# --- the same money through two doors, and money we cannot place --------------------


def test_a_paybill_confirmation_of_a_push_the_query_already_paid_pays_nothing_more(
    client, daraja, loan
) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    payment_attempt_reconcile(
        attempt_id=attempt.pk, actor=Actor.system(), now=timezone.now() + timedelta(minutes=5)
    )
    push = daraja.pushes[attempt.attempt_ref]
    # some paybills also confirm a push's money through C2B, under its receipt
    body = daraja.c2b_body(
        shortcode=SHORTCODE, account=loan.reference, amount=push.amount, receipt=push.receipt
    )
    assert call(client, path(loan.lender, "c2b-confirmation"), body).status_code == 200
    assert Payment.objects.count() == 1
    attempt.refresh_from_db()
    assert attempt.receipt == push.receipt  # the customer's receipt, found at last


def test_a_push_confirmed_first_through_the_paybill_is_paid_by_that_money(
    client, daraja, loan
) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    body = daraja.c2b_body(
        shortcode=SHORTCODE, account=loan.reference, amount=push.amount, receipt=push.receipt
    )
    call(client, path(loan.lender, "c2b-confirmation"), body)
    call(client, stk_path(daraja, attempt), daraja.stk_callback_body(push))
    attempt.refresh_from_db()
    assert (attempt.status, attempt.payment) == ("paid", Payment.objects.get())
    later = timezone.now() + timedelta(minutes=5)
    assert payment_attempt_reconcile(attempt_id=attempt.pk, actor=Actor.system(), now=later) == (
        "paid"
    )
    assert Payment.objects.count() == 1


def test_paid_money_for_a_push_we_cannot_place_is_kept_for_the_back_office(
    client, daraja, loan
) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    body = daraja.stk_callback_body(push)
    body["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_LOSTINTRANSIT"
    assert call(client, stk_path(daraja, attempt), body).status_code == 200
    assert Payment.objects.count() == 0
    kept = WebhookEvent.objects.get()
    assert (kept.event_id, kept.payment) == ("stk:ws_CO_LOSTINTRANSIT", None)
    unmatched = AuditEvent.objects.get(action="collections.payment.unmatched")
    assert (unmatched.data["reference"], unmatched.data["why"]) == (push.receipt, "unknown_attempt")


def test_a_push_paid_with_its_callback_lost_is_received_when_it_was_started(daraja, loan) -> None:
    attempt = push_started(loan)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    payment_attempt_reconcile(
        attempt_id=attempt.pk, actor=Actor.system(), now=timezone.now() + timedelta(hours=2)
    )
    assert Payment.objects.get().received_at == attempt.created_at  # not when we asked


def test_a_push_daraja_cannot_be_asked_about_is_not_given_up_after_half_an_hour(
    daraja, loan
) -> None:
    attempt = push_started(loan)
    daraja.stop()  # Daraja unreachable for the query
    at = attempt.created_at
    assert (
        payment_attempt_reconcile(
            attempt_id=attempt.pk, actor=Actor.system(), now=at + timedelta(minutes=31)
        )
        == "started"
    )
    assert (
        payment_attempt_reconcile(
            attempt_id=attempt.pk, actor=Actor.system(), now=at + timedelta(days=1, minutes=1)
        )
        == "expired"
    )
    daraja.start()  # the fixture stops it again


def test_one_unreadable_answer_does_not_stop_the_reconciliation_of_the_others(
    daraja, lender_a, loan
) -> None:
    from apps.collections.services import payment_attempts_reconcile

    broken = push_started(loan)
    other_loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    with time_machine.travel(timezone.now() + timedelta(seconds=1)):
        fine = push_started(other_loan)
    daraja.settle(broken.attempt_ref, 0, callback=False)
    daraja.pushes[broken.attempt_ref].result_code = "not a number"  # Daraja answers nonsense
    daraja.settle(fine.attempt_ref, 0, callback=False)
    later = timezone.now() + timedelta(minutes=5)
    assert payment_attempts_reconcile(actor=Actor.system(), now=later) == 2
    fine.refresh_from_db()
    broken.refresh_from_db()
    assert (fine.status, broken.status) == ("paid", "started")
    assert broken.checked_at == later  # to the back of the line, asked again later


def test_a_push_paid_after_the_lender_turned_m_pesa_off_is_still_applied(
    client, daraja, loan
) -> None:
    from apps.integrations.models import ProviderAccount

    attempt = push_started(loan)
    ProviderAccount.objects.filter(lender=loan.lender, provider="mpesa").update(enabled=False)
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    assert (
        call(client, stk_path(daraja, attempt), daraja.stk_callback_body(push)).status_code == 200
    )
    assert Payment.objects.get().provider_ref == push.receipt
    with pytest.raises(Exception, match="takes no payments through this provider"):
        push_started(loan)  # but no new payment is started through it
