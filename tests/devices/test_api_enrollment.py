"""The agent's enroll endpoint: a phone enrolls once and gets its credentials, refusals bind
nothing and are audited, bad input gets a clear 400."""

import base64
import hashlib
from datetime import timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.devices.errors import DeviceNotPending
from apps.devices.keys import lender_signing_key
from apps.devices.models import Device
from apps.devices.services import enrollment_token_mint
from tests.devices.enrollment import enroll
from tests.devices.factories import valid_imei

pytestmark = pytest.mark.django_db


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


def test_no_code_for_an_enrolled_phone(client, device) -> None:
    enroll(
        client, enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token, device.imei
    )
    with pytest.raises(DeviceNotPending):
        enrollment_token_mint(device_id=device.pk, actor=Actor.system())
