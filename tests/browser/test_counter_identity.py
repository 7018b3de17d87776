"""One customer per number, in headless Chromium, both ways: the clerk who types a new
person with another customer's number is stopped at step 1 with that customer's masked
name on the number; and each customer, logging in with their number, sees their own loan
and never the other's."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.collections.services import loan_sign
from apps.core.actor import Actor
from apps.core.money import Money
from apps.customers.models import Customer
from apps.retailers.models import Sale
from tests.accounts.factories import PASSWORD
from tests.browser.conftest import texted_code
from tests.collections.factories import signed_loan
from tests.customers.factories import consent_for
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for
from tests.retailers.factories import clerk_for, shop_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TAKEN = "This number belongs to another customer (A. W***): check it."


def _amina(lender) -> Customer:
    """Amina Wanjiru, a customer with a loan, on +254712345678."""
    loan = signed_loan(lender)
    Customer.objects.filter(pk=loan.customer_id).update(
        full_name="Amina Wanjiru", phone="+254712345678"
    )
    return Customer.objects.get(pk=loan.customer_id)


def _clerk_types_brian(browser, live_server, lender, *, first_phone: str, screenshot: str = ""):
    """At the counter (a phone's browser): a new sale for Brian Otieno, first with
    ``first_phone``; returns the page, still open."""
    restriction_policy_version_for(lender)
    clerk = clerk_for(shop_for(lender))
    context = browser.new_context(viewport={"width": 412, "height": 915}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/pos/")
    page.fill("#id_username", clerk.user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("#new-sale")
    page.wait_for_url("**/customer/")
    page.fill("#id_full_name", "Brian Otieno")
    page.fill("#id_phone", first_phone)
    page.fill("#id_national_id", "30987654")
    page.click("button[type=submit]")
    return page


def test_the_clerk_is_stopped_at_step_1_with_the_masked_name_on_another_customers_number(
    live_server, browser, lender_a
) -> None:
    _amina(lender_a)
    page = _clerk_types_brian(browser, live_server, lender_a, first_phone="0712 345 678")
    expect(page.locator("#id_phone_error")).to_have_text(TAKEN)
    expect(page.locator("#id_phone")).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/customer/")
    assert Sale.objects.get().customer_id is None
    assert Customer.objects.count() == 1

    page.fill("#id_phone", "0722 000 111")  # the clerk checks with Brian and corrects it
    page.click("button[type=submit]")
    page.wait_for_url("**/phone/")
    expect(page.locator("#id_imei")).to_be_visible()
    assert Customer.objects.get(full_name="Brian Otieno").phone == "+254722000111"
    page.context.close()


def _log_in(browser, live_server, lender, phone: str, sms_outbox):
    context = browser.new_context(viewport={"width": 412, "height": 915}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/my/{lender.slug}/login/")
    page.fill("#id_phone", phone)
    sent = len(sms_outbox)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code/")
    code = texted_code(sms_outbox, sent)
    page.fill("#id_code", code)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/my/{lender.slug}/")
    return page


def test_a_customer_logging_in_with_a_number_typed_for_another_sees_only_their_own_loan(
    live_server, browser, lender_a, sms_outbox
) -> None:
    """The issue's case: Brian, a new customer, is typed in with Amina's number. Before,
    he was created on it, and Amina's login (the newest customer on the number) showed her
    Brian's loan. Now the clerk is stopped and corrects the number; each sees their own."""
    amina = _amina(lender_a)
    amina_loan = amina.loans.get()
    counter = _clerk_types_brian(browser, live_server, lender_a, first_phone="0712345678")
    expect(counter.locator("#id_phone_error")).to_have_text(TAKEN)
    counter.fill("#id_phone", "0722000111")
    counter.click("button[type=submit]")
    counter.wait_for_url("**/phone/")
    counter.context.close()
    brian = Sale.objects.get().customer
    brian_loan = loan_sign(
        customer=brian,
        consent=consent_for(brian),
        product=LoanProductFactory(lender=lender_a),
        device_price=Money(Decimal(12000), "KES"),
        down_payment=Money(Decimal(2000), "KES"),
        actor=Actor.system(),
    )

    for phone, mine, theirs in (
        ("0712 345 678", amina_loan, brian_loan),
        ("0722 000 111", brian_loan, amina_loan),
    ):
        page = _log_in(browser, live_server, lender_a, phone, sms_outbox)
        expect(page.locator(f'[data-loan="{mine.reference}"]')).to_be_visible()
        expect(page.locator(f'[data-loan="{theirs.reference}"]')).to_have_count(0)
        assert theirs.reference not in page.content()
        page.context.close()
