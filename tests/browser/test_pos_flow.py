"""The clerk's whole flow in headless Chromium, ending with a phone enrolling from the QR."""

import base64
import io
import json
from decimal import Decimal

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image

from apps.collections.models import Loan
from apps.devices.provisioning import P
from tests.accounts.factories import PASSWORD
from tests.browser.conftest import save_screenshot, texted_code
from tests.devices.factories import valid_imei
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for
from tests.retailers.factories import clerk_for, shop_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_clerk_sells_a_phone_and_the_page_turns_to_enrolled(
    live_server, browser, lender_a, sms_outbox
) -> None:
    context = browser.new_context(
        viewport={"width": 412, "height": 915}, is_mobile=True
    )  # a phone at the counter
    page = context.new_page()
    restriction_policy_version_for(lender_a)
    product = LoanProductFactory(
        lender=lender_a, name="12 months", min_down_payment_percent=Decimal(10)
    )
    clerk = clerk_for(shop_for(lender_a))
    imei = valid_imei()

    def snap(name: str) -> None:
        save_screenshot(page, name)

    page.goto(f"{live_server.url}/pos/")
    page.fill("#id_username", clerk.user.username)
    page.fill("#id_password", PASSWORD)
    snap("pos-0-login")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/pos/")
    page.click("#new-sale")
    page.wait_for_url("**/customer/")

    page.fill("#id_full_name", "Amina Wanjiru")
    page.fill("#id_phone", "0712 345 678")
    page.fill("#id_national_id", "23456781")
    snap("pos-1-customer")
    page.click("button[type=submit]")
    page.wait_for_url("**/phone/")

    page.fill("#id_imei", imei)
    page.fill("#id_brand", "Tecno")
    page.fill("#id_model_name", "Spark 20")
    page.fill("#id_price", "24000")
    snap("pos-2-phone")
    page.click("button[type=submit]")
    page.wait_for_url("**/plan/")

    page.select_option("#id_product", str(product.pk))
    page.fill("#id_down_payment", "4000")
    snap("pos-3-plan")
    page.click("button[type=submit]")

    page.wait_for_url("**/consent/")
    page.wait_for_selector("#consent-text")
    assert "Emergency calls always work" in page.inner_text("#consent-text")
    sent = len(sms_outbox)
    page.click("#send-code")
    page.wait_for_selector("#id_code")
    code = texted_code(sms_outbox, sent)
    page.fill("#id_code", code)
    snap("pos-4-consent")
    page.click("#confirm-code")

    page.wait_for_url("**/sign/")
    page.wait_for_selector("#sign")
    snap("pos-5-sign")
    page.click("#sign")
    page.wait_for_url("**/provision/")
    page.wait_for_selector("#provisioning-qr svg")  # shown at once
    snap("pos-6-provision")
    assert Loan.objects.count() == 1

    def decoded() -> dict:
        (code,) = zxingcpp.read_barcodes(
            Image.open(io.BytesIO(page.locator("#provisioning-qr").screenshot()))
        )
        return json.loads(code.text)

    scanned = decoded()
    extras = scanned[f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    page.reload()  # the phone is installing the agent: a reload leaves its code working
    page.wait_for_selector("#provisioning-qr svg")
    assert decoded() == scanned
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    response = page.request.post(
        f"{live_server.url}/api/agent/v1/enroll",
        data={
            "token": extras["token"],
            "imei": imei,
            "agent_public_key": base64.b64encode(public).decode(),
        },
    )
    assert response.status == 201, response.text()
    page.wait_for_selector("#device-status.enrolled", timeout=10000)  # polled, no reload
    snap("pos-7-enrolled")
    page.click("#receipt-link")
    page.wait_for_url("**/receipt/")
    page.wait_for_selector(".schedule")
    snap("pos-8-receipt")
    context.close()
