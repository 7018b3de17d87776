"""The customer's page on a 360 px phone: the language chosen at the login stays, the
schedule fits, a phone not linked yet is not shown as good news, and a request that went
through looks like success."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.customers.models import Customer
from tests.browser.conftest import PHONE_VIEWPORT, customer_log_in, save_screenshot
from tests.collections.factories import signed_loan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GREEN = "rgb(218, 251, 225)"


def _background(page, selector: str) -> str:
    return page.eval_on_selector(selector, "e => getComputedStyle(e).backgroundColor")


def test_a_customer_who_chose_spanish_reads_a_fitting_page_in_spanish(
    live_server, phone_page, lender_a, sms_outbox
) -> None:
    loan = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=40))
    Customer.objects.filter(pk=loan.customer_id).update(
        full_name="Amina Wanjiru", phone="+254712345678", locale="en"
    )
    page = phone_page
    customer = Customer.objects.get(pk=loan.customer_id)
    customer_log_in(page, live_server, lender_a, customer, sms_outbox, language="es")

    assert page.locator("html").get_attribute("lang") == "es"  # not the "en" on file
    status = '[data-testid="phone-status"]'
    assert page.inner_text(status) == "Todavía no hay un teléfono vinculado a este crédito."
    assert _background(page, status) != GREEN
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_VIEWPORT["width"], f"the page is {width} px wide"
    save_screenshot(page, "customer-7-schedule-360-es")

    page.click('form[action$="/hardship/"] >> xpath=.. >> summary')
    hardship = page.locator('form[action$="/hardship/"]')
    hardship.locator("input[type=date]").fill(
        (timezone.localdate() + timedelta(days=14)).isoformat()
    )
    hardship.locator("textarea").fill("Perdí mi trabajo.")
    hardship.locator("button").click()
    page.wait_for_selector('[data-testid="flash"]')
    assert "success" in page.get_attribute('[data-testid="flash"]', "class")
    assert _background(page, '[data-testid="flash"]') == GREEN
    save_screenshot(page, "customer-8-request-sent-es")
