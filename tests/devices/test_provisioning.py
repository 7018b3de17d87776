"""The provisioning QR code: the documented Android Enterprise keys, one encoding for both
images."""

import base64
import io
import json

import pytest
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
