"""Paying from the customer's page through the providers' loopback fakes, in Chromium: an M-Pesa
prompt the customer answers on the phone (Daraja calls the live server back), and an OXXO
voucher taken on Stripe's checkout page and paid at a store later (Stripe's events reach the
live server). The page says where the payment stands, and the phone's status changes on it,
without a reload."""

from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from apps.collections.models import PaymentAttempt
from apps.customers.models import Customer
from tests.browser.conftest import customer_log_in, late_phone_for, save_screenshot
from tests.collections.daraja import paybill_for
from tests.collections.stripe import WEBHOOK_SECRET, stripe_for, webhook_url
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

NORMAL = "Your phone works normally."
PHONE, PAYMENT = '[data-testid="phone-status"]', '[data-testid="payment-status"]'


@pytest.fixture
def late_customer(live_server, settings, fake_fcm, redis_worker, browser, sms_outbox):
    """``late_customer(lender, name)``: a loan of ``lender`` 50 days late, its phone's apps
    blocked (the agent simulator), and its customer, named as a shop would for the
    screenshots, logged in on the phone's browser: (loan, agent, page)."""
    with ExitStack() as stack:
        context = browser.new_context(viewport={"width": 412, "height": 915}, is_mobile=True)
        stack.callback(context.close)

        def late(lender, name):
            loan, agent = stack.enter_context(
                late_phone_for(
                    lender, live_server=live_server, settings=settings, fake_fcm=fake_fcm
                )
            )
            Customer.objects.filter(pk=loan.customer_id).update(full_name=name)
            page = context.new_page()
            customer_log_in(page, live_server, lender, loan.customer, sms_outbox)
            assert page.locator(PHONE).inner_text().startswith("Social apps are blocked since")
            return loan, agent, page

        yield late


def test_a_customer_pays_with_an_m_pesa_prompt_and_watches_the_phone_unlock(
    live_server, lender_a, daraja, late_customer, settings
) -> None:
    settings.PAYMENTS_CALLBACK_BASE_URL = live_server.url  # where the push says to call back
    paybill_for(lender_a)
    loan, agent, page = late_customer(lender_a, "Brian Otieno")
    phone, payment = page.locator(PHONE), page.locator(PAYMENT)
    expect(payment).to_be_hidden()

    # the number on file is offered; the prompt goes to it
    page.click('[data-testid="pay-mpesa"]')
    expect(payment).to_contain_text("enter your M-Pesa PIN")
    attempt = PaymentAttempt.objects.get(loan=loan)
    push = daraja.pushes[attempt.attempt_ref]
    assert push.phone == loan.customer.phone.removeprefix("+")
    assert push.callback_url.startswith(f"{live_server.url}/api/payments/v1/daraja/")
    save_screenshot(page, "customer-5-mpesa-prompt")

    # the customer enters the PIN: Daraja calls the live server back
    assert daraja.settle(attempt.attempt_ref, 0).status_code == 200
    expect(payment).to_contain_text(f"receipt {push.receipt}", timeout=20_000)
    wait_for(lambda: agent.phone.level == "normal")
    expect(phone).to_have_text(NORMAL, timeout=20_000)
    attempt.refresh_from_db()
    assert (attempt.status, attempt.payment.receipt_ref) == ("paid", push.receipt)


def test_a_customer_pays_an_oxxo_voucher_at_the_store_and_watches_the_phone_unlock(
    live_server, lender_b, stripe_fake, late_customer, settings
) -> None:
    stripe_for(lender_b)
    stripe_fake.demo = True  # the voucher's own page and the store's button, as in the demo
    stripe_fake.webhook(f"{live_server.url}{webhook_url(lender_b)}", WEBHOOK_SECRET)
    # the Pay's redirect goes to the fake's checkout page, which Chromium checks against
    # form-action: the fake's origin stands for https://checkout.stripe.com here
    policy = settings.CONTENT_SECURITY_POLICY
    directives = policy["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        **policy,
        "DIRECTIVES": {**directives, "form-action": [*directives["form-action"], stripe_fake.base]},
    }
    loan, agent, page = late_customer(lender_b, "Lucía Hernández")
    phone, payment = page.locator(PHONE), page.locator(PAYMENT)

    # Stripe's checkout page: the OXXO voucher, then back to the lender's page
    page.click('[data-testid="pay-stripe"]')
    page.wait_for_url(f"{stripe_fake.base}/pay/**")
    page.click("text=OXXO voucher")
    page.wait_for_url(f"{stripe_fake.base}/voucher/**")
    number = page.locator("strong").first.inner_text()
    voucher_url = page.url
    page.click("text=Back to the merchant")
    page.wait_for_url(f"{live_server.url}/my/{lender_b.slug}/?paid=1")
    expect(payment).to_contain_text(f"at any OXXO store with reference {number}")
    save_screenshot(page, "customer-6-oxxo-voucher")
    assert PaymentAttempt.objects.get(loan=loan).status == "pending"
    assert phone.inner_text().startswith("Social apps are blocked since")

    # days later, the customer pays the voucher at a store's till
    till = page.context.new_page()
    till.goto(voucher_url)
    till.click("text=Pay at the store (demo)")
    expect(till.locator("h1")).to_have_text("Paid at the store.")
    attempt = PaymentAttempt.objects.get(loan=loan)
    assert attempt.status == "paid"
    expect(payment).to_contain_text(
        f"received, receipt {attempt.payment.provider_ref}", timeout=20_000
    )
    wait_for(lambda: agent.phone.level == "normal")
    expect(phone).to_have_text(NORMAL, timeout=20_000)
