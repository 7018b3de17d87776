"""Writes the agent's calls make: check-in, ack, events, push address."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import audit_event_record
from apps.core.actor import Actor, ActorType
from apps.devices.desired_state import sign_document
from apps.devices.errors import AckVersionUnknown, DeviceReleased
from apps.devices.events import DevicesAction
from apps.devices.locks import device_lock
from apps.devices.models import Device, DeviceEvent, DeviceState
from apps.devices.services.enrollment import sha256_hex
from apps.devices.services.offline import offline_report_apply
from apps.devices.services.state_writer import state_reissue
from apps.devices.sql import DEVICE_AUTHENTICATE, DEVICE_AUTHENTICATE_FIELDS, DEVICE_HEARTBEAT
from apps.lenders.models import Lender

# A state handed to a phone keeps at least this much of its offline lease.
LEASE_RENEW_BEFORE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SignedState:
    document: dict[str, Any]
    signature: str  # Ed25519 over the canonical document, base64
    key_version: int


@dataclass(frozen=True, slots=True)
class CheckIn:
    state: SignedState | None  # the newest state, when the phone has an older one


def device_check_in(
    *,
    device_id: int,
    applied_version: int,
    agent_version: str,
    battery_percent: int | None,
    iccid_sha256: str,
    ip: str | None,
) -> CheckIn:
    """Record that the phone is alive and hand it the newest state if it is behind.

    A current phone (its newest state applied and acked, its SIM unchanged)
    costs one UPDATE; any other goes through ``_check_in_locked``.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            DEVICE_HEARTBEAT,
            {
                "now": timezone.now(),
                "battery": battery_percent,
                "agent": agent_version,
                "ip": ip or "",
                "id": device_id,
                "applied": applied_version,
                "iccid": iccid_sha256,
                "renew_by": timezone.now() + LEASE_RENEW_BEFORE,
            },
        )
        if cursor.fetchone() is not None:
            return CheckIn(state=None)
    return _check_in_locked(
        device_id=device_id,
        applied_version=applied_version,
        agent_version=agent_version,
        battery_percent=battery_percent,
        iccid_sha256=iccid_sha256,
        ip=ip,
    )


@transaction.atomic
def _check_in_locked(
    *,
    device_id: int,
    applied_version: int,
    agent_version: str,
    battery_percent: int | None,
    iccid_sha256: str,
    ip: str | None,
) -> CheckIn:
    """Record that the phone is alive and hand it the newest state if it is behind.

    Locks the device. Safe to repeat. The version the phone says it applied
    counts as its ack when the ack itself was lost (``device_ack``'s rules).
    A state whose offline lease ends within ``LEASE_RENEW_BEFORE`` is
    re-issued with the same content and a fresh lease before it is handed
    over, so a phone that was off for a week is not refused its own state,
    and a current phone that checks in gets it too: the lease's fallback is
    for a phone that cannot check in, never for one that does. A
    heartbeat is not audited; a changed SIM (its ICCID's hash) is, as
    ``devices.device.sim_changed``.
    """
    device = device_lock(device_id=device_id)
    if device.status == Device.Status.RELEASED:
        raise DeviceReleased(device_id=device.pk)
    actor = Actor(type=ActorType.DEVICE, id=str(device.pk), ip=ip)
    if iccid_sha256 and device.iccid_sha256 and iccid_sha256 != device.iccid_sha256:
        audit_event_record(
            actor=actor,
            action=DevicesAction.SIM_CHANGED,
            target=device,
            data={
                "loan_id": device.loan_id,
                "old": {"iccid_sha256": device.iccid_sha256},
                "new": {"iccid_sha256": iccid_sha256},
            },
        )
    Device.objects.filter(pk=device.pk).update(
        last_seen_at=timezone.now(),
        agent_version=agent_version or device.agent_version,
        battery_percent=battery_percent,
        iccid_sha256=iccid_sha256 or device.iccid_sha256,
        last_ip=ip or "",
        updated_at=timezone.now(),
    )
    if device.acked_version < applied_version <= device.desired_version:
        _ack_locked(device=device, version=applied_version, actor=actor)
    state = DeviceState.objects.get(device=device, version=device.desired_version)
    valid_until = datetime.fromisoformat(state.document["valid_until"])
    renew = valid_until - timezone.now() < LEASE_RENEW_BEFORE
    if applied_version >= device.desired_version and not renew:
        return CheckIn(state=None)
    if renew:
        state = (
            state_reissue(
                device=device,
                actor=Actor.system(),
                reason="The offline lease is renewed as it nears its end.",
            )
            or state
        )
    slug = Lender.objects.values_list("slug", flat=True).get(pk=device.lender_id)
    signature = sign_document(lender_slug=slug, document=state.document)
    return CheckIn(state=SignedState(state.document, signature, state.key_version))


@transaction.atomic
def device_ack(*, device_id: int, version: int, error_code: str, actor: Actor) -> Device:
    """The phone applied ``version`` (or failed to, with ``error_code``).

    Locks the device. Acknowledgements only move forward: a late ack of an
    older version changes nothing, so repeating one is harmless. The ack of a
    state that announced a new lender key moves the phone to that key; the ack
    of the ``released`` state marks the phone released, for good. A phone
    that found its state's lease expired gets it re-issued. Emits
    ``devices.state.acknowledged`` or ``devices.state.failed``.
    """
    device = device_lock(device_id=device_id)
    if version > device.desired_version or version < 1:
        raise AckVersionUnknown(version=version)
    if error_code:
        if version <= device.acked_version:  # about a state already superseded and applied
            return device
        if device.last_ack_error != f"{version}:{error_code}":
            device.last_ack_error = f"{version}:{error_code}"
            device.save(update_fields=["last_ack_error", "updated_at"])
            audit_event_record(
                actor=actor,
                action=DevicesAction.STATE_FAILED,
                target=device,
                data={"version": version, "error": error_code},
            )
            if error_code == "expired" and version == device.desired_version:
                state_reissue(device=device, actor=Actor.system(), reason="Its lease had expired.")
        return device
    _ack_locked(device=device, version=version, actor=actor)
    return device


def _ack_locked(*, device: Device, version: int, actor: Actor) -> None:
    """Record that the phone applied ``version`` (the caller holds the device lock)."""
    if version <= device.acked_version:
        return
    state = DeviceState.objects.get(device=device, version=version)
    data: dict[str, Any] = {
        "loan_id": device.loan_id,
        "level": state.level,
        "version": {"old": device.acked_version, "new": version},
    }
    device.acked_version, device.acked_at, device.last_ack_error = version, timezone.now(), ""
    announced = (state.document.get("next_key") or {}).get("version", 0)
    if announced > device.key_version:  # the phone now trusts the announced key
        data["key_version"] = {"old": device.key_version, "new": announced}
        device.key_version = announced
    if state.level == DeviceState.Level.RELEASED and device.status != Device.Status.RELEASED:
        data["status"] = {"old": device.status, "new": Device.Status.RELEASED}
        device.status, device.released_at = Device.Status.RELEASED, timezone.now()
    device.save(
        update_fields=[
            "acked_version",
            "acked_at",
            "last_ack_error",
            "key_version",
            "status",
            "released_at",
            "updated_at",
        ]
    )
    audit_event_record(
        actor=actor, action=DevicesAction.STATE_ACKNOWLEDGED, target=device, data=data
    )
    if "key_version" in data and device.desired_version > version:
        # a newer state went out under the old key: the same again, under the new one
        state_reissue(
            device=device, actor=actor, reason="Re-issued under the key the phone now trusts."
        )


def device_authenticate(*, device_id: int, secret: str) -> Device | None:
    """The device whose credential ``secret`` is, or None (constant-time comparison)."""
    # every agent call starts here: one narrow statement, no ORM compilation
    with connection.cursor() as cursor:
        cursor.execute(DEVICE_AUTHENTICATE, [device_id])
        row = cursor.fetchone()
    device = Device.from_db(connection.alias, DEVICE_AUTHENTICATE_FIELDS, row) if row else None
    if device is None or not device.credential_hash:
        return None
    if not hmac.compare_digest(device.credential_hash, sha256_hex(secret)):
        return None
    return device


@transaction.atomic
def device_event_report(
    *,
    device_id: int,
    event_id: str,
    kind: str,
    occurred_at: Any,
    detail: dict[str, Any],
    actor: Actor,
) -> tuple[DeviceEvent, bool]:
    """Store what the phone reported, once per event id, and audit it.

    Locks the device. A repeat of the same event id returns the stored event
    and records nothing. A report of an unlock code the phone applied offline marks the
    code applied (``offline_report_apply``); a grace or a support PIN used offline is on the
    record by its event. Emits ``devices.device.event_reported``.
    """
    device = device_lock(device_id=device_id)
    existing = DeviceEvent.objects.filter(device=device, event_id=event_id).first()
    if existing is not None:
        return existing, False
    event = DeviceEvent.objects.create(
        lender_id=device.lender_id,
        device=device,
        event_id=event_id,
        kind=kind,
        occurred_at=occurred_at,
        detail=detail,
    )
    applied = offline_report_apply(device=device, event=event)
    audit_event_record(
        actor=actor,
        action=DevicesAction.EVENT_REPORTED,
        target=device,
        data={
            "loan_id": device.loan_id,
            "event_id": event_id,
            "kind": kind,
            "occurred_at": occurred_at,
            "detail": detail,
            **applied,
        },
    )
    return event, True


@transaction.atomic
def device_fcm_token_set(
    *, device_id: int, fcm_token: str, actor: Actor, kind: str = "token"
) -> Device:
    """The phone's new push address; a dead one comes back to life. Audited when it
    changes (the token's hash, not the token)."""
    device = device_lock(device_id=device_id)
    if (device.fcm_token, device.push_address_kind) != (
        fcm_token,
        kind,
    ) or device.fcm_token_dead_at:
        device.fcm_token, device.push_address_kind, device.fcm_token_dead_at = fcm_token, kind, None
        device.save(
            update_fields=["fcm_token", "push_address_kind", "fcm_token_dead_at", "updated_at"]
        )
        audit_event_record(
            actor=actor,
            action=DevicesAction.PUSH_ADDRESS_CHANGED,
            target=device,
            data={"token_sha256": sha256_hex(fcm_token)},
        )
    return device
