import base64
import hashlib
import io
import json
import threading
from datetime import timedelta

import pytest
import time_machine
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.devices.errors import DeviceNotPending, ImeiInUse, ImeiInvalid
from apps.devices.keys import lender_signing_key
from apps.devices.models import Device, EnrollmentToken
from apps.devices.provisioning import (
    P,
    payload_text,
    provisioning_qr,
    provisioning_qr_png,
    provisioning_qr_svg,
)
from apps.devices.services import enrollment_token_mint
from apps.lenders.models import Membership
from tests.collections.factories import signed_loan
from tests.devices.factories import phone_registered, valid_imei

pytestmark = pytest.mark.django_db
ENROLL = "/api/agent/v1/enroll"


def agent_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


@pytest.fixture
def device(lender_a):
    return phone_registered(
        signed_loan(lender_a), imei=valid_imei(), brand="Tecno", model_name="Spark 20"
    )


def enroll(client, token: str, imei: str, **extra):
    body = {
        "token": token,
        "imei": imei,
        "serial": "R58N1234",
        "model": "Spark 20",
        "android_version": "14",
        "agent_version": "1.0.0",
        "fcm_token": "fcm-abc",
        "agent_public_key": agent_key(),
        **extra,
    }
    return client.post(ENROLL, data=body, content_type="application/json")


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


def test_only_the_tokens_hash_is_stored_and_a_fresh_code_revokes_the_old(device) -> None:
    first = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    second = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    stored = list(EnrollmentToken.objects.order_by("id"))
    assert [t.token_hash for t in stored] == [
        hashlib.sha256(m.token.encode()).hexdigest() for m in (first, second)
    ]
    assert stored[0].revoked_at is not None
    assert stored[1].revoked_at is None
    assert stored[1].expires_at - stored[1].created_at >= timedelta(hours=23, minutes=59)


def test_a_phone_enrolls_once_and_gets_its_credentials(client, device) -> None:
    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    response = enroll(client, minted.token, device.imei)
    assert response.status_code == 201, response.content
    body = response.json()
    device.refresh_from_db()
    assert device.status == Device.Status.ENROLLED
    assert (device.serial, device.android_version, device.fcm_token) == (
        "R58N1234",
        "14",
        "fcm-abc",
    )
    assert (
        device.credential_hash == hashlib.sha256(body["device_secret"].encode()).hexdigest()
    )  # hashed
    # the key the phone got verifies what the lender signs
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(body["lender_public_key"]))
    public.verify(
        lender_signing_key(lender_slug=device.lender.slug, version=1).sign(b"state"), b"state"
    )
    assert AuditEvent.objects.filter(
        action="devices.device.enrolled", target_id=str(device.pk)
    ).exists()

    again = enroll(client, minted.token, device.imei)
    assert (again.status_code, again.json()["code"]) == (409, "enrollment_token_used")


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("wrong_imei", 409, "imei_mismatch"),
        ("unknown_token", 401, "enrollment_token_invalid"),
        ("revoked_token", 401, "enrollment_token_invalid"),
        ("expired_token", 410, "enrollment_token_expired"),
    ],
)
def test_refused_enrollments_bind_nothing_and_are_audited(
    client, device, case, status, code
) -> None:
    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    token, imei = minted.token, device.imei
    if case == "wrong_imei":
        imei = valid_imei()
    elif case == "unknown_token":
        token = "not-a-real-code"
    elif case == "revoked_token":
        enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    if case == "expired_token":
        with time_machine.travel(timezone.now() + timedelta(hours=25)):
            response = enroll(client, token, imei)
    else:
        response = enroll(client, token, imei)
    assert (response.status_code, response.json()["code"]) == (status, code)
    device.refresh_from_db()
    assert (device.status, device.credential_hash) == (Device.Status.PENDING, "")
    assert (
        AuditEvent.objects.filter(action="devices.enrollment.refused", data__problem=code).count()
        == 1
    )


def test_bad_input_gets_a_clear_400(client, device) -> None:
    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    response = enroll(client, minted.token, device.imei, agent_public_key="not base64!")
    assert response.status_code == 400
    assert "agent_public_key" in response.json()["extra"]["fields"]


def test_an_imei_is_luhn_checked_and_bound_to_one_open_loan(lender_a) -> None:
    loan = signed_loan(lender_a)
    with pytest.raises(ImeiInvalid):
        phone_registered(loan, imei="352099001761482", brand="X", model_name="Y")
    imei = valid_imei()
    phone_registered(signed_loan(lender_a), imei=imei, brand="X", model_name="Y")
    loan = signed_loan(lender_a)
    with pytest.raises(ImeiInUse):
        phone_registered(loan, imei=imei, brand="X", model_name="Y")


def test_no_code_for_an_enrolled_phone(client, device) -> None:
    enroll(
        client, enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token, device.imei
    )
    with pytest.raises(DeviceNotPending):
        enrollment_token_mint(device_id=device.pk, actor=Actor.system())


def test_an_agent_shows_a_fresh_code_in_the_back_office(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    mine = phone_registered(signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y")
    theirs = phone_registered(signed_loan(lender_b), imei=valid_imei(), brand="X", model_name="Y")
    client = verified_client(make_agent(lender_a, role=Membership.Role.AGENT))
    url = reverse("admin:devices_device_enrollment_code", args=[mine.pk])
    response = client.post(url)
    assert response.status_code == 200
    assert b"<svg" in response.content
    assert EnrollmentToken.objects.filter(device=mine).count() == 1
    other = reverse("admin:devices_device_enrollment_code", args=[theirs.pk])
    assert client.post(other).status_code == 404
    assert not EnrollmentToken.objects.filter(device=theirs).exists()


@pytest.mark.django_db(transaction=True)
def test_two_phones_scanning_one_code_at_once_enroll_one(lender_a) -> None:
    device = phone_registered(signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y")
    token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
    barrier, statuses = threading.Barrier(2), []

    def scan() -> None:
        barrier.wait()
        statuses.append(enroll(Client(), token, device.imei).status_code)
        connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
