"""Paying from the customer's page with M-Pesa: the prompt sent to the number given, the
page telling where it stands, and the paybill for paying from the M-Pesa menu."""

import pytest
from django.urls import reverse

from apps.collections.models import PaymentAttempt
from tests.collections.daraja import SHORTCODE, call, paybill_for
from tests.selfservice.test_views import late_loan

pytestmark = pytest.mark.django_db


def pay_url(lender, loan) -> str:
    return reverse(
        "customers:pay", kwargs={"lender_slug": lender.slug, "reference": loan.reference}
    )


def home(client, lender) -> str:
    return client.get(
        reverse("customers:home", kwargs={"lender_slug": lender.slug})
    ).content.decode()


def test_the_page_offers_m_pesa_with_the_customers_number_and_the_paybill(
    client, lender_a, daraja, log_in
) -> None:
    paybill_for(lender_a)
    loan = late_loan(lender_a, days_ago=50)
    log_in(lender_a, loan.customer)
    page = home(client, lender_a)
    assert 'data-testid="pay-mpesa"' in page
    assert f'value="{loan.customer.phone}"' in page  # the number on file, to change if need be
    assert f"business number {SHORTCODE}, account number {loan.reference}" in page
    assert 'data-testid="pay"' not in page  # no demo checkout beside a real provider


def test_paying_with_m_pesa_prompts_the_number_given_and_the_page_says_so(
    client, lender_a, daraja, log_in
) -> None:
    paybill_for(lender_a)
    loan = late_loan(lender_a, days_ago=50)
    log_in(lender_a, loan.customer)
    answer = client.post(pay_url(lender_a, loan), {"provider": "mpesa", "phone": "0722 000 111"})
    assert answer.status_code == 302
    attempt = PaymentAttempt.objects.get()
    push = daraja.pushes[attempt.attempt_ref]
    assert (push.phone, push.account_reference) == ("254722000111", loan.reference)
    assert "enter your M-Pesa PIN" in home(client, lender_a)
    # the PIN entered: Daraja calls back, and the page's live status says it arrived
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    callback_path = push.callback_url.split("127.0.0.1", 1)[-1].split(":", 1)[-1]
    callback_path = callback_path[callback_path.index("/") :]
    assert call(client, callback_path, daraja.stk_callback_body(push)).status_code == 200
    status = client.get(reverse("customers:status", kwargs={"lender_slug": lender_a.slug})).json()
    assert f"receipt {push.receipt}" in status["loans"][0]["payment"]


def test_a_number_m_pesa_cannot_prompt_is_refused_on_the_page(
    client, lender_a, daraja, log_in
) -> None:
    paybill_for(lender_a)
    loan = late_loan(lender_a, days_ago=50)
    log_in(lender_a, loan.customer)
    client.post(pay_url(lender_a, loan), {"provider": "mpesa", "phone": "12"})
    assert PaymentAttempt.objects.count() == 0
    assert daraja.pushes == {}
    assert "not a valid" in home(client, lender_a).lower()


def test_without_a_provider_or_the_demo_the_page_says_whom_to_ask(
    client, lender_a, log_in, settings
) -> None:
    settings.PAYMENTS_FAKE_CHECKOUT = False
    loan = late_loan(lender_a, days_ago=50)
    log_in(lender_a, loan.customer)
    page = home(client, lender_a)
    assert f"To pay, contact {lender_a.name}." in page
    assert not any(f'data-testid="{b}"' in page for b in ("pay", "pay-mpesa", "pay-stripe"))
