import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.devices.errors import DeviceReleased
from apps.devices.models import Device
from apps.devices.services import (
    device_enroll,
    device_register,
    device_state_set,
    enrollment_token_mint,
)
from apps.devices.state import canonical
from tests.collections.factories import signed_loan
from tests.devices.factories import valid_imei

pytestmark = pytest.mark.django_db


@pytest.fixture
def phone(lender_a):
    """An enrolled phone: (device, secret, lender public key)."""
    device = device_register(loan=signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y",
                             actor=Actor.system())  # fmt: skip
    token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    enrolled = device_enroll(token=token, imei=device.imei, serial="", model_name="", android_version="14",
                             agent_version="1.0", fcm_token="", agent_public_key=base64.b64encode(public).decode(),
                             actor=Actor.system())  # fmt: skip
    return device, enrolled.device_secret, enrolled.lender_public_key


def auth(device, secret) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Device {device.pk}:{secret}"}


def check_in(client, device, secret, version: int):
    return client.post("/api/agent/v1/check-in", {"version": version, "battery": 80},
                       content_type="application/json", **auth(device, secret))  # fmt: skip


def verify(state: dict, public_key_b64: str) -> None:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    key.verify(base64.b64decode(state["signature"]), canonical(state["document"]))


def test_a_new_phone_pulls_its_first_signed_state(client, phone) -> None:
    device, secret, lender_key = phone
    response = check_in(client, device, secret, 0)
    assert response.status_code == 200
    state = response.json()["state"]
    verify(state, lender_key)
    assert (state["document"]["version"], state["document"]["level"]) == (1, "normal")
    assert "com.android.phone" in state["document"]["always_allowed_packages"]
    device.refresh_from_db()
    assert (device.battery_percent, device.last_seen_at is not None) == (80, True)


def test_a_changed_state_reaches_a_phone_behind_and_nothing_is_sent_when_current(
    client, phone
) -> None:
    device, secret, lender_key = phone
    device_state_set(device_id=device.pk, level="block_apps", blocked_categories=["social"],
                     actor=Actor.system(), reason="14 days overdue")  # fmt: skip
    state = check_in(client, device, secret, 1).json()["state"]
    verify(state, lender_key)
    assert (state["document"]["version"], state["document"]["blocked_categories"]) == (
        2,
        ["social"],
    )
    assert check_in(client, device, secret, 2).json() == {"state": None}


def test_a_tampered_state_fails_verification(client, phone) -> None:
    device, secret, lender_key = phone
    state = check_in(client, device, secret, 0).json()["state"]
    verify(state, lender_key)  # the server's signature holds...
    state["document"]["level"] = "lock"  # ...until a byte of the document changes
    with pytest.raises(InvalidSignature):
        verify(state, lender_key)


def test_acks_only_move_forward_and_are_audited_once(client, phone) -> None:
    device, secret, _ = phone
    device_state_set(
        device_id=device.pk, level="lock", actor=Actor.system(), reason="30 days overdue"
    )

    def post(body):
        return client.post(
            "/api/agent/v1/ack", body, content_type="application/json", **auth(device, secret)
        )

    assert post({"version": 2}).json() == {"acked_version": 2}
    assert post({"version": 1}).json() == {"acked_version": 2}  # a late ack of an older version
    assert post({"version": 2}).json() == {"acked_version": 2}  # a repeat
    assert post({"version": 3}).status_code == 409
    assert (
        AuditEvent.objects.filter(action="devices.state.acknowledged", data__version=2).count() == 1
    )
    post({"version": 2, "error_code": "dpm_denied"})
    post({"version": 2, "error_code": "dpm_denied"})
    assert AuditEvent.objects.filter(action="devices.state.failed").count() == 1


@pytest.mark.parametrize("header", ["Device 1:wrong", "Device x:y", "Bearer abc", ""])
def test_bad_credentials_are_refused(client, phone, header) -> None:
    kwargs = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        "/api/agent/v1/check-in", {"version": 0}, content_type="application/json", **kwargs
    )
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"code", "message", "extra"}


def test_a_released_phone_can_never_be_restricted_again(client, phone) -> None:
    device, secret, _ = phone
    Device.objects.filter(pk=device.pk).update(status=Device.Status.RELEASED)
    with pytest.raises(DeviceReleased):
        device_state_set(device_id=device.pk, level="lock", actor=Actor.system(), reason="try")
    assert AuditEvent.objects.filter(
        action="devices.state.refused", target_id=str(device.pk)
    ).exists()
    assert check_in(client, device, secret, 1).status_code == 410


def test_a_changed_sim_is_on_the_record(client, phone) -> None:
    device, secret, _ = phone
    for iccid in ("a" * 64, "a" * 64, "b" * 64):
        client.post("/api/agent/v1/check-in", {"version": 1, "iccid_sha256": iccid},
                    content_type="application/json", **auth(device, secret))  # fmt: skip
    events = AuditEvent.objects.filter(action="devices.device.sim_changed")
    assert [e.data["new"]["iccid_sha256"][0] for e in events] == ["b"]


def test_reported_events_are_stored_and_audited_once(client, phone) -> None:
    device, secret, _ = phone
    body = {"event_id": "e-1", "kind": "tamper_suspected", "occurred_at": "2026-11-24T10:00:00Z",
            "detail": {"what": "usb debugging on"}}  # fmt: skip
    first = client.post(
        "/api/agent/v1/events", body, content_type="application/json", **auth(device, secret)
    )
    again = client.post(
        "/api/agent/v1/events", body, content_type="application/json", **auth(device, secret)
    )
    assert (first.json()["stored"], again.json()["stored"]) == (True, False)
    assert (
        AuditEvent.objects.filter(
            action="devices.device.event_reported", data__kind="tamper_suspected"
        ).count()
        == 1
    )
    bad = client.post("/api/agent/v1/events", {**body, "kind": "exploded"}, content_type="application/json",
                      **auth(device, secret))  # fmt: skip
    assert bad.status_code == 400


def test_a_new_push_token_is_kept_and_audited_without_the_token(client, phone) -> None:
    device, secret, _ = phone
    for token in ("fcm-new", "fcm-new"):
        response = client.post("/api/agent/v1/fcm-token", {"fcm_token": token}, content_type="application/json",
                               **auth(device, secret))  # fmt: skip
        assert response.status_code == 200
    device.refresh_from_db()
    assert device.fcm_token == "fcm-new"
    events = AuditEvent.objects.filter(action="devices.device.fcm_token_changed")
    assert events.count() == 1
    assert "fcm-new" not in str(events.get().data)
