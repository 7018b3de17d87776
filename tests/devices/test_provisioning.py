"""The provisioning QR code: the documented Android Enterprise keys, one encoding for both
images."""

import base64
import io
import json

import pytest
import qrcode
import zxingcpp
from PIL import Image

from apps.core.actor import Actor
from apps.devices.provisioning import (
    P,
    payload_text,
    provisioning_qr,
    provisioning_qr_png,
    provisioning_qr_svg,
)
from apps.devices.services import enrollment_token_mint

pytestmark = pytest.mark.django_db


def test_the_qr_png_decodes_to_the_documented_provisioning_keys(device) -> None:
    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(provisioning_qr_png(minted.payload))))
    assert len(decoded) == 1
    payload = json.loads(decoded[0].text)
    assert (
        payload[f"{P}PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"]
        == "com.smartcollection.agent/.AdminReceiver"
    )
    assert payload[f"{P}PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION"].startswith("https://")
    checksum = payload[f"{P}PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM"]
    assert set(checksum) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )  # URL-safe, no padding
    assert len(base64.urlsafe_b64decode(checksum + "=" * (-len(checksum) % 4))) == 32  # a SHA-256
    assert payload[f"{P}PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED"] is True
    extras = payload[f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert extras == {"server": "http://127.0.0.1:8000/api/agent/v1/", "token": minted.token}
    assert len(payload_text(minted.payload)) < 1024


def test_the_payload_holds_only_what_the_phone_and_agent_need(device, settings) -> None:
    """The documented keys and the agent's two extras, compact, a 22-character code: 549
    bytes with the test settings' addresses (559 with a 32-character code), which encode
    as a version-16 code at level L, 81 modules a side (version 18, 89 modules, at level M
    before)."""
    settings.PROVISIONING_WIFI_SSID = ""
    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    assert set(minted.payload) == {
        f"{P}PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME",
        f"{P}PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION",
        f"{P}PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM",
        f"{P}PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED",
        f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE",
    }
    assert len(minted.token) == 22  # 128 random bits, URL-safe base64
    text = payload_text(minted.payload)
    assert " " not in text
    assert len(text) == 549
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(text)
    code.make(fit=True)
    assert code.version == 16
    png = Image.open(io.BytesIO(provisioning_qr_png(minted.payload)))
    assert png.size == ((81 + 2 * 4) * 8,) * 2  # the 4-module quiet zone, 8 pixels a module


def test_one_encoding_gives_both_images(device, monkeypatch) -> None:
    """The POS and admin pages show the SVG and offer the PNG of one code. Encoding (trying
    the eight masks) is most of the cost: the load drill found the QR page at 125 ms a view
    when each image was encoded apart."""
    import qrcode

    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    masks_chosen = []
    choose = qrcode.QRCode.best_mask_pattern

    def counted(self):
        masks_chosen.append(1)
        return choose(self)

    monkeypatch.setattr(qrcode.QRCode, "best_mask_pattern", counted)
    svg, png = provisioning_qr(minted.payload)
    assert len(masks_chosen) == 1
    assert (svg, png) == (provisioning_qr_svg(minted.payload), provisioning_qr_png(minted.payload))
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert json.loads(decoded[0].text) == minted.payload
