"""The back-office login in headless Chromium: password, QR set-up, code, back office."""

import io
import re
import time
from base64 import b32decode
from urllib.parse import parse_qs, urlparse

import pytest
import zxingcpp
from django.conf import settings
from django_otp.oath import TOTP
from PIL import Image
from playwright.sync_api import expect

from apps.lenders.models import Membership
from tests.accounts.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def code_from_secret(secret_b32: str, offset: int = 0) -> str:
    totp = TOTP(b32decode(secret_b32 + "=" * (-len(secret_b32) % 8)))
    totp.time = time.time() + offset
    return f"{totp.token():06d}"


def test_first_login_scans_the_qr_then_logs_in_with_the_code(
    live_server, page, screenshot, lender_a, make_agent
) -> None:
    agent = make_agent(lender_a, role=Membership.Role.SUPERVISOR, username="amina")

    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", agent.username)
    page.fill("#id_password", PASSWORD)
    screenshot("admin-login")
    page.click("input[type=submit]")

    # First login: the page shows a QR code; read it the way a phone would.
    page.wait_for_url(re.compile(r"/admin/2fa/setup/\?next="))
    page.wait_for_selector("#totp-qr svg")
    screenshot("admin-2fa-setup")
    png = page.locator("#totp-qr").screenshot()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(decoded) == 1
    uri = urlparse(decoded[0].text)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    params = parse_qs(uri.query)
    assert params["issuer"] == ["Smart Collection"]
    secret = params["secret"][0]
    assert page.inner_text("#totp-secret").replace(" ", "") == secret

    page.fill("#id_otp_token", code_from_secret(secret))
    page.click("#otp-setup-form input[type=submit]")
    page.wait_for_selector("#backup-codes li")
    assert page.locator("#backup-codes li").count() == 10
    page.click("#continue")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.wait_for_selector("#site-name")
    assert "Audit events" in page.content()  # the supervisor's back office
    screenshot("admin-index")

    # Log out, then log in again: password, then the code step.
    page.click("#logout-form button")
    page.wait_for_url(f"{live_server.url}/admin/logout/")  # signed out before the next visit
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", agent.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#otp-form")
    screenshot("admin-2fa-verify")
    page.fill("#id_otp_token", "000000")
    page.click("#otp-form input[type=submit]")
    expect(page.locator(".errornote")).to_contain_text("not valid")
    # django-otp refuses any code for OTP_TOTP_THROTTLE_FACTOR seconds after a wrong one
    time.sleep(settings.OTP_TOTP_THROTTLE_FACTOR + 0.2)
    # A code from the next 30-second window (within the allowed drift), so it
    # is not the one used at set-up: a code works once.
    page.fill("#id_otp_token", code_from_secret(secret, offset=30))
    page.click("#otp-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.wait_for_selector("#site-name")
