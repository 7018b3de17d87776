"""The Android Enterprise QR provisioning payload, and its QR code as SVG and PNG.

A factory-reset phone tapped six times on its welcome screen opens a QR
reader; the JSON it reads names our device-owner agent, where to download it,
the SHA-256 of its signing certificate, and an admin-extras bundle that the
agent receives once installed: our server's address and the enrollment code.

The payload holds only what the setup wizard and the agent need: the documented keys, in
compact JSON, Wi-Fi only when configured, and an enrollment code of 22 characters. Fewer
bytes make a QR code of fewer, larger modules, which a phone's camera reads from further
and on a dimmer screen (tests/devices/test_provisioning.py measures it).
"""

from __future__ import annotations

import io
import json
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings

P = "android.app.extra."


def provisioning_payload(*, token: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        f"{P}PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": settings.AGENT_ADMIN_COMPONENT,
        f"{P}PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": settings.AGENT_DOWNLOAD_URL,
        f"{P}PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": settings.AGENT_SIGNATURE_CHECKSUM,
        f"{P}PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED": True,
        f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE": {
            "server": settings.AGENT_API_BASE_URL,
            "token": token,
        },
    }
    if settings.PROVISIONING_WIFI_SSID:
        payload[f"{P}PROVISIONING_WIFI_SSID"] = settings.PROVISIONING_WIFI_SSID
        payload[f"{P}PROVISIONING_WIFI_SECURITY_TYPE"] = settings.PROVISIONING_WIFI_SECURITY_TYPE
        if settings.PROVISIONING_WIFI_PASSWORD:
            payload[f"{P}PROVISIONING_WIFI_PASSWORD"] = settings.PROVISIONING_WIFI_PASSWORD
    return payload


def payload_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _qr(text: str) -> Any:
    # Level L (7 % recovery): the code is read off a clean screen or a fresh print, not a
    # worn label, and L gives the same payload two versions fewer (81 modules a side, not 89)
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=4)
    code.add_data(text)
    code.make(fit=True)
    return code


def _svg(code: Any) -> str:
    code.box_size = 6
    image = code.make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")


def _png(code: Any) -> bytes:
    code.box_size = 8
    out = io.BytesIO()
    code.make_image().save(out, format="PNG")
    return out.getvalue()


def provisioning_qr_svg(payload: dict[str, Any]) -> str:
    return _svg(_qr(payload_text(payload)))


def provisioning_qr_png(payload: dict[str, Any]) -> bytes:
    return _png(_qr(payload_text(payload)))


def provisioning_qr(payload: dict[str, Any]) -> tuple[str, bytes]:
    """The code as SVG (shown) and PNG (to download), from one encoding.

    Encoding is most of the cost: choosing the mask tries all eight on a
    version-20 code (about 45 ms of a worker's CPU). The POS page showed both
    images made apart, 125 ms a QR; the load drill found it the slowest page
    by far (tests/devices/test_provisioning.py::test_one_encoding_gives_both_images).
    """
    code = _qr(payload_text(payload))
    return _svg(code), _png(code)
