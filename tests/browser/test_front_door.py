"""The front door at ``/``, the error pages and a lost session, in headless Chromium."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.retailers.models import Sale
from tests.accounts.factories import PASSWORD
from tests.browser.conftest import admin_log_in, clerk_log_in, save_screenshot
from tests.collections.factories import signed_loan
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import restriction_policy_version_for
from tests.retailers.factories import clerk_for, shop_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _drop_session(page) -> None:
    """The session ends (it timed out on the server): the browser keeps only its CSRF cookie."""
    page.context.clear_cookies(name="sessionid")


def test_the_front_door_sends_a_customer_to_their_lender_in_their_language(
    live_server, phone_page, lender_a, lender_b, settings
) -> None:
    settings.DEMO_SEED_ALLOWED = False
    page = phone_page
    page.context.add_cookies([{"name": "django_language", "value": "es", "url": live_server.url}])
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.inner_text("h1") == "Bienvenido"
    assert page.locator('[data-testid="demo"]').count() == 0
    save_screenshot(page, "front-door-es")
    page.select_option("#lender", "lender-b")
    page.click('[data-testid="lender-chooser"] button')
    page.wait_for_url(f"{live_server.url}/my/lender-b/login/")
    assert page.locator("html").get_attribute("lang") == "es"


def test_the_demos_front_door_lists_its_logins_and_its_phones_as_they_are(
    live_server, page, lender_a, make_agent, settings
) -> None:
    settings.DEMO_SEED_ALLOWED = True
    make_agent(lender_a, username="ke-agent")
    clerk = clerk_for(shop_for(lender_a))
    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=3))
    device.loan.customer.__class__.objects.filter(pk=device.loan.customer_id).update(
        full_name="Amina Wanjiru"
    )
    page.goto(f"{live_server.url}/")
    logins = page.inner_text('[data-testid="demo-logins"]')
    assert "ke-agent" in logins
    assert clerk.user.username in logins
    assert "Shop clerk" in logins
    phones = page.inner_text('[data-testid="demo-phones"]')
    assert "Amina Wanjiru" in phones
    assert device.model_name in phones
    assert "No restriction" in phones
    save_screenshot(page, "front-door-demo")
    page.click('[data-testid="to-counter"]')
    page.wait_for_url("**/pos/login/?next=*")


def test_a_missing_page_answers_in_the_visitors_language_with_a_way_back(
    live_server, phone_page, lender_a
) -> None:
    page = phone_page
    page.context.add_cookies(
        [{"name": "django_language", "value": "zh-hans", "url": live_server.url}]
    )
    response = page.goto(f"{live_server.url}/my/{lender_a.slug}/no-such-page/")
    assert response.status == 404
    assert page.inner_text("h1") == "此页面不存在"
    save_screenshot(page, "error-404-zh-hans")
    page.click('[data-testid="way-back"]')
    page.wait_for_url(f"{live_server.url}/my/{lender_a.slug}/login/")


def test_an_expired_form_says_so_and_reopens_the_page(live_server, phone_page, lender_a) -> None:
    page = phone_page
    page.goto(f"{live_server.url}/my/{lender_a.slug}/login/")
    page.context.clear_cookies(name="csrftoken")
    page.fill("#id_phone", "0712 345 678")
    page.click("button[type=submit]")
    page.wait_for_selector('[data-testid="retry"]')
    assert page.inner_text("h1") == "This form has expired"
    save_screenshot(page, "error-csrf")
    page.click('[data-testid="retry"]')
    page.wait_for_url(f"{live_server.url}/my/{lender_a.slug}/login/")
    assert page.locator("#id_phone").count() == 1


def test_a_clerk_whose_session_ended_goes_on_with_the_sale_after_logging_in(
    live_server, phone_page, lender_a
) -> None:
    page = phone_page
    restriction_policy_version_for(lender_a)
    clerk = clerk_for(shop_for(lender_a))
    clerk_log_in(page, live_server, clerk)
    page.click("#new-sale")
    page.wait_for_url("**/customer/")
    step = page.url
    page.fill("#id_full_name", "Brian Otieno")
    page.fill("#id_phone", "0722 000 111")
    page.fill("#id_national_id", "30987654")
    _drop_session(page)
    page.click("button[type=submit]")
    page.wait_for_url("**/pos/login/?next=*")
    page.fill("#id_username", clerk.user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    # what was typed before the session ended is sent again: the sale is at its next step
    page.wait_for_url(step.replace("/customer/", "/phone/"))
    sale = Sale.objects.get()
    assert sale.step == Sale.Step.PHONE
    assert sale.customer.full_name == "Brian Otieno"


def test_an_agent_whose_session_ended_is_back_on_the_loan_after_logging_in(
    live_server, page, lender_a, make_agent
) -> None:
    loan = signed_loan(lender_a)
    agent = make_agent(lender_a, username="achieng")
    loan_page = f"{live_server.url}/admin/collections/loan/{loan.pk}/change/"
    admin_log_in(page, f"{live_server.url}/admin/", agent)
    _drop_session(page)
    page.goto(loan_page)
    page.fill("#id_username", agent.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    # this time step's code was used a moment ago (a code works once): the next step's,
    # which the authenticator shows seconds later and the server accepts (one step of drift)
    device = TOTPDevice.objects.get(user=agent)
    page.fill("#id_otp_token", f"{totp(device.bin_key, t0=device.t0 - device.step):06d}")
    page.click("#otp-form input[type=submit]")
    page.wait_for_url(loan_page)
