import base64
import json
from urllib.parse import urlencode

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.devices.desired_state import canonical
from apps.devices.errors import DeviceReleased
from apps.devices.models import Device
from apps.devices.services import (
    device_key_announce,
    device_state_set,
    lender_signing_key_rotate,
)
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


@pytest.fixture
def phone(lender_a):
    """An enrolled phone: (device, secret, lender public key)."""
    return enrolled_phone(lender_a)


def auth(device, secret) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Device {device.pk}:{secret}"}


def check_in(client, device, secret, version: int):
    return client.post(
        "/api/agent/v1/check-in",
        {"version": version, "battery": 80},
        content_type="application/json",
        **auth(device, secret),
    )


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
    device_state_set(
        device_id=device.pk,
        level="block_apps",
        blocked_categories=["social"],
        actor=Actor.system(),
        reason="14 days overdue",
    )
    state = check_in(client, device, secret, 1).json()["state"]
    verify(state, lender_key)
    assert (state["document"]["version"], state["document"]["blocked_categories"]) == (
        2,
        ["social"],
    )
    assert check_in(client, device, secret, 2).json() == {"state": None, "notices": []}


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
        AuditEvent.objects.filter(action="devices.state.acknowledged", data__version__new=2).count()
        == 1
    )
    post({"version": 2, "error_code": "dpm_denied"})  # about a state already applied: ignored
    device_state_set(device_id=device.pk, level="normal", actor=Actor.system(), reason="Paid.")
    post({"version": 3, "error_code": "dpm_denied"})
    post({"version": 3, "error_code": "dpm_denied"})
    assert list(
        AuditEvent.objects.filter(action="devices.state.failed").values_list("data", flat=True)
    ) == [{"version": 3, "error": "dpm_denied"}]


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
        client.post(
            "/api/agent/v1/check-in",
            {"version": 1, "iccid_sha256": iccid},
            content_type="application/json",
            **auth(device, secret),
        )
    events = AuditEvent.objects.filter(action="devices.device.sim_changed")
    assert [e.data["new"]["iccid_sha256"][0] for e in events] == ["b"]


def test_reported_events_are_stored_and_audited_once(client, phone) -> None:
    device, secret, _ = phone
    body = {
        "event_id": "e-1",
        "kind": "tamper_suspected",
        "occurred_at": "2026-11-24T10:00:00Z",
        "detail": {"what": "usb debugging on"},
    }
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
    bad = client.post(
        "/api/agent/v1/events",
        {**body, "kind": "exploded"},
        content_type="application/json",
        **auth(device, secret),
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("where", ["key", "value", "nested"])
def test_an_event_detail_postgres_cannot_store_is_400_when_reported(
    client, phone, text, where
) -> None:
    """jsonb holds no NUL character and no unpaired surrogate: such a detail was a 500 (found
    by the schema drill), and is now refused as invalid input, with nothing stored."""
    device, secret, _ = phone
    detail = {"key": {text: 1}, "value": {"what": text}, "nested": {"a": [{"b": text}]}}[where]
    body = json.dumps(
        {
            "event_id": "e-nul",
            "kind": "tamper_suspected",
            "occurred_at": "2026-11-24T10:00:00Z",
            "detail": detail,
        }
    )
    response = client.post(
        "/api/agent/v1/events", body, content_type="application/json", **auth(device, secret)
    )
    assert response.status_code == 400, response.content
    assert (response.json()["code"], list(response.json()["extra"]["fields"])) == (
        "invalid",
        ["detail"],
    )
    assert not AuditEvent.objects.filter(action="devices.device.event_reported").exists()


def test_a_deeply_nested_event_detail_is_checked_without_recursion(client, phone) -> None:
    """600 levels fit the detail's size limit; the check walked them by recursion (a 500)."""
    device, secret, _ = phone
    deep: object = "\x00"
    for _ in range(600):
        deep = [deep]
    body = json.dumps(
        {
            "event_id": "e-deep",
            "kind": "tamper_suspected",
            "occurred_at": "2026-11-24T10:00:00Z",
            "detail": {"x": deep},
        }
    )
    response = client.post(
        "/api/agent/v1/events", body, content_type="application/json", **auth(device, secret)
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["extra"]["fields"]) == ["detail"]
    # far past the interpreter's recursion limit, as no HTTP body under the size limit goes
    from apps.devices.api.views import _jsonb_storable

    for _ in range(20_000):
        deep = [deep]
    assert _jsonb_storable(deep) is False


def test_an_event_id_is_taken_as_sent_when_it_has_surrounding_whitespace(client, phone) -> None:
    """The schema says at most 64 characters; trimmed, 65 with a leading space passed, and
    " e-1" was the event "e-1" (found by the schema drill)."""
    device, secret, _ = phone
    body = {"kind": "tamper_suspected", "occurred_at": "2026-11-24T10:00:00Z"}

    def report(event_id: str):
        return client.post(
            "/api/agent/v1/events",
            {**body, "event_id": event_id},
            content_type="application/json",
            **auth(device, secret),
        )

    too_long = report(" " + "e" * 64)
    assert too_long.status_code == 400, too_long.content
    assert list(too_long.json()["extra"]["fields"]) == ["event_id"]
    assert [report(event_id).json()["stored"] for event_id in ("e-1", " e-1")] == [True, True]


def test_a_form_encoded_agent_call_is_415_when_the_agent_api_takes_json_only(client, phone) -> None:
    """A form or multipart body dropped an event's nested detail without a word (the schema
    drill found such a body stored as {}); the agent API now takes JSON only, as the schema says."""
    device, secret, _ = phone
    body = {
        "event_id": "e-form",
        "kind": "tamper_suspected",
        "occurred_at": "2026-11-24T10:00:00Z",
        "detail": "usb debugging on",
    }
    multipart = client.post("/api/agent/v1/events", body, **auth(device, secret))
    form = client.post(
        "/api/agent/v1/events",
        urlencode(body),
        content_type="application/x-www-form-urlencoded",
        **auth(device, secret),
    )
    for response in (multipart, form):
        assert response.status_code == 415, response.content
        assert response.json()["code"] == "unsupported_media_type"
    assert not AuditEvent.objects.filter(action="devices.device.event_reported").exists()
    schema = client.get("/api/schema/?format=json").json()
    bodies = {
        path: operations["post"]["requestBody"]
        for path, operations in schema["paths"].items()
        if path.startswith("/api/agent/v1/") and "requestBody" in operations.get("post", {})
    }
    assert len(bodies) >= 5, bodies  # enroll, check-in, ack, events, push token at least
    for path, body in bodies.items():
        assert list(body["content"]) == ["application/json"], path


def test_a_new_push_token_is_kept_and_audited_without_the_token(client, phone) -> None:
    device, secret, _ = phone
    for token in ("fcm-new", "fcm-new"):
        response = client.post(
            "/api/agent/v1/fcm-token",
            {"fcm_token": token},
            content_type="application/json",
            **auth(device, secret),
        )
        assert response.status_code == 200
    device.refresh_from_db()
    assert device.fcm_token == "fcm-new"
    events = AuditEvent.objects.filter(action="devices.device.fcm_token_changed")
    assert events.count() == 1
    assert "fcm-new" not in str(events.get().data)


def test_a_new_lender_key_is_announced_under_the_old_one_and_trusted_after_the_ack(
    client, phone, lender_a
) -> None:
    device, secret, old_key = phone
    key = lender_signing_key_rotate(lender_id=lender_a.pk, actor=Actor.system(), reason="Yearly.")
    assert device_key_announce(lender_id=lender_a.pk) == 1
    assert device_key_announce(lender_id=lender_a.pk) == 0  # a repeat issues nothing more
    state = check_in(client, device, secret, 1).json()["state"]
    verify(state, old_key)  # signed by the key the phone trusts...
    assert state["document"]["next_key"] == {"version": 2, "public_key": key.public_key}
    assert state["document"]["level"] == "normal"  # ...with the same content
    ack = client.post(
        "/api/agent/v1/ack", {"version": 2}, content_type="application/json", **auth(device, secret)
    )
    assert ack.status_code == 200
    device.refresh_from_db()
    assert device.key_version == 2

    device_state_set(device_id=device.pk, level="lock", actor=Actor.system(), reason="Overdue.")
    state = check_in(client, device, secret, 2).json()["state"]
    assert (state["key_version"], "next_key" in state["document"]) == (2, False)
    verify(state, key.public_key)
    with pytest.raises(InvalidSignature):
        verify(state, old_key)  # the old key no longer speaks for the lender to this phone
    assert enrolled_phone(lender_a)[2] == key.public_key  # new phones start on the new key
    assert AuditEvent.objects.filter(action="devices.lender_key.rotated").count() == 1


def test_a_push_address_is_a_token_or_an_installation_id_but_not_both(client, phone) -> None:
    device, secret, _ = phone

    def post(body):
        return client.post(
            "/api/agent/v1/fcm-token", body, content_type="application/json", **auth(device, secret)
        )

    assert post({"fid": "fid-1"}).status_code == 200
    device.refresh_from_db()
    assert (device.fcm_token, device.push_address_kind) == ("fid-1", "fid")
    assert post({"fid": "a", "fcm_token": "b"}).status_code == 400
    assert post({}).status_code == 400


def test_a_state_once_written_is_never_edited(phone) -> None:
    from django.db import ProgrammingError, transaction

    from apps.devices.models import DeviceState

    device, _, _ = phone
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        DeviceState.objects.filter(device=device).update(level="lock")
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        DeviceState.objects.filter(device=device).delete()
    assert DeviceState.objects.get(device=device).level == "normal"


def test_a_body_nested_past_the_recursion_limit_is_400_when_it_reaches_the_agent_api(
    client, phone
) -> None:
    device, secret, _ = phone
    deep = "[" * 50_000  # well inside the upload limit; enroll needs no credentials at all
    for path, headers in (
        ("/api/agent/v1/enroll", {}),
        ("/api/agent/v1/events", auth(device, secret)),
    ):
        response = client.post(path, deep, content_type="application/json", **headers)
        assert response.status_code == 400, (path, response.status_code)
        assert response.json()["code"] == "parse_error"
