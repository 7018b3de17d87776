"""A late customer, on their phone's browser: logs in with the code by SMS, sees the blocked
apps and what happens next, pays through the provider's checkout, and watches the phone
unlock (the agent simulator applies and acknowledges) without reloading the page."""

import pytest
from playwright.sync_api import expect

from apps.devices.models import Device
from tests.browser.conftest import late_phone_for, save_screenshot, texted_code
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def late_phone(lender_a, live_server, settings, fake_fcm, redis_worker):
    """A phone sold 50 days ago, its apps blocked by this morning's sweep."""
    with late_phone_for(
        lender_a, live_server=live_server, settings=settings, fake_fcm=fake_fcm
    ) as found:
        yield found


def test_a_late_customer_logs_in_pays_and_sees_the_phone_unlock(
    live_server, browser, lender_a, late_phone, sms_outbox
) -> None:
    loan, agent = late_phone
    context = browser.new_context(viewport={"width": 412, "height": 915}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/my/{lender_a.slug}/login/")
    page.fill("#id_phone", loan.customer.phone)
    save_screenshot(page, "customer-0-login")
    sent = len(sms_outbox)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code/")
    code = texted_code(sms_outbox, sent)
    page.fill("#id_code", code)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/my/{lender_a.slug}/")

    status = page.locator('[data-testid="phone-status"]')
    assert status.inner_text().startswith("Social apps are blocked since")
    assert "because installment 1 is" in status.inner_text()
    assert "the phone will lock" in page.locator('[data-testid="next-step"]').inner_text()
    save_screenshot(page, "customer-1-blocked-apps")

    page.click('[data-testid="pay"]')
    page.wait_for_url("**/demo-provider/checkout/**")
    save_screenshot(page, "customer-2-checkout")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/my/{lender_a.slug}/?paid=1")
    assert "Thank you, your payment is received." in page.content()

    # the phone applies the unlock pushed after the payment, and the page (polling) says so
    wait_for(lambda: agent.phone.level == "normal")
    # expect() rather than wait_for_function, whose string predicate is an eval the CSP refuses
    expect(status).to_have_text("Your phone works normally.", timeout=20_000)
    save_screenshot(page, "customer-3-unlocked")
    device = Device.objects.get(loan=loan)
    assert device.acked_version == device.desired_version
    loan.refresh_from_db()
    assert loan.stage == "none"
    context.close()
