"""An agent shows a phone's enrollment QR in the back office; a phone scans it and enrolls."""

import base64
import io
import json

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image

from apps.devices.models import Device
from apps.devices.provisioning import P
from tests.browser.conftest import admin_log_in
from tests.collections.factories import signed_loan
from tests.devices.factories import phone_registered, valid_imei

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_qr_on_screen_enrolls_the_phone(
    live_server, page, screenshot, lender_a, make_agent
) -> None:
    agent = make_agent(lender_a, username="wanjiku")
    device = phone_registered(
        signed_loan(lender_a), imei=valid_imei(), brand="Tecno", model_name="Spark 20"
    )

    admin_log_in(page, f"{live_server.url}/admin/devices/device/{device.pk}/change/", agent)
    page.click("#enrollment-code")
    page.wait_for_url(f"{live_server.url}/admin/devices/device/{device.pk}/enrollment-code/")
    page.click("#mint")
    page.wait_for_selector("#provisioning-qr svg")
    screenshot("admin-enrollment-code")

    # The phone's camera: read the QR code off the screen.
    png = page.locator("#provisioning-qr").screenshot()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(decoded) == 1
    extras = json.loads(decoded[0].text)[f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # The agent just installed from the QR calls enroll (an HTTP client of its own).
    response = page.request.post(
        f"{live_server.url}/api/agent/v1/enroll",
        data={
            "token": extras["token"],
            "imei": device.imei,
            "serial": "R58",
            "model": "Spark 20",
            "android_version": "14",
            "agent_version": "1.0.0",
            "fcm_token": "t",
            "agent_public_key": base64.b64encode(public).decode(),
        },
    )
    assert response.status == 201, response.text()
    device.refresh_from_db()
    assert device.status == Device.Status.ENROLLED
