"""A customer who paid while the locked phone is offline, on another phone's browser: the page
shows the code to type on the lock screen, and takes it away by itself once the phone is back
and has taken its new state."""

import pytest
from playwright.sync_api import expect

from apps.core.actor import Actor
from apps.devices.models import Device, OfflineToken
from apps.devices.selectors import offline_code_digits
from apps.devices.services import device_ack
from tests.browser.conftest import customer_log_in, save_screenshot
from tests.collections.offline import locked_phone, pay_cash

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_customer_page_shows_the_unlock_code_until_the_phone_takes_its_state(
    live_server, browser, lender_a, sms_outbox
) -> None:
    device, loan = locked_phone(lender_a)
    # The factory's phones are "X Y"; name it as a shop would, for the screenshot.
    Device.objects.filter(pk=device.pk).update(brand="Tecno", model_name="Spark 20")
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    digits = offline_code_digits(code=code)

    context = browser.new_context(viewport={"width": 412, "height": 915}, is_mobile=True)
    page = context.new_page()
    customer_log_in(page, live_server, lender_a, loan.customer, sms_outbox)

    box = page.locator('[data-testid="offline-code"]')
    expect(box).to_be_visible()
    assert box.inner_text().startswith("Your phone is offline? Type this code on the lock screen:")
    shown = page.locator('[data-testid="offline-code-digits"]').inner_text()
    assert shown == f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    grace = page.locator('[data-testid="emergency-grace"]').inner_text()
    assert grace.startswith("Once per restriction, you can lift a lock for 24 hours")
    save_screenshot(page, "customer-4-offline-code")

    # the phone is back online and acknowledges its state: the page (polling) drops the code
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )
    expect(box).to_be_hidden(timeout=20_000)
    context.close()
