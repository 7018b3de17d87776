"""Writes for devices: registering the phone sold, enrollment codes, enrollment."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from stdnum import imei as stdnum_imei
from stdnum.exceptions import ValidationError as StdnumValidationError

from apps.audit.services import audit_event_record
from apps.collections.models import Loan
from apps.core.actor import Actor, ActorType
from apps.devices.errors import (
    AckVersionUnknown,
    DeviceNotPending,
    DeviceReleased,
    EnrollmentImeiMismatch,
    EnrollmentRefused,
    EnrollmentTokenExpired,
    EnrollmentTokenInvalid,
    EnrollmentTokenUsed,
    ImeiInUse,
    ImeiInvalid,
)
from apps.devices.events import DevicesAction
from apps.devices.keys import CURRENT_KEY_VERSION, lender_public_key_b64
from apps.devices.locks import device_lock, enrollment_token_lock_by_hash
from apps.devices.models import Device, DeviceEvent, DeviceState, EnrollmentToken
from apps.devices.provisioning import provisioning_payload
from apps.devices.state import sign_document, state_document


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def imei_normalise(raw: str) -> str:
    """15 digits with a valid Luhn check digit (python-stdnum), or ImeiInvalid."""
    try:
        number = stdnum_imei.validate(raw)
    except StdnumValidationError as exc:
        raise ImeiInvalid() from exc
    if len(number) != 15:  # 14 digits without check digit, or 16 with a software version
        raise ImeiInvalid()
    return number


@transaction.atomic
def device_register(*, loan: Loan, imei: str, brand: str, model_name: str, actor: Actor) -> Device:
    """Record the phone sold on ``loan``, pending enrollment.

    Locks the loan. An IMEI already bound to a loan that is not closed is
    refused (a partial unique index backs this up against races). Emits
    ``devices.device.registered``.
    """
    number = imei_normalise(imei)
    Loan.objects.select_for_update(of=("self",)).get(pk=loan.pk)
    device = Device(lender_id=loan.lender_id, loan=loan, imei=number, brand=brand.strip(),
                    model_name=model_name.strip())  # fmt: skip
    device.full_clean(exclude=["lender", "loan"], validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            device.save(force_insert=True)
    except IntegrityError as exc:
        raise ImeiInUse(imei_last4=number[-4:]) from exc
    audit_event_record(
        actor=actor,
        action=DevicesAction.DEVICE_REGISTERED,
        target=device,
        data={
            "loan_id": loan.pk,
            "imei": number,
            "brand": device.brand,
            "model": device.model_name,
        },
    )
    return device


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str  # shown once, in the QR code
    expires_at: Any
    payload: dict[str, Any]


@transaction.atomic
def enrollment_token_mint(*, device_id: int, actor: Actor) -> MintedToken:
    """A fresh single-use enrollment code for a sold, not yet enrolled phone.

    Locks the device. Earlier unused codes of the device are revoked, so only
    the code on screen works. The code expires after
    ``ENROLLMENT_TOKEN_TTL_HOURS``; only its hash is stored. Emits
    ``devices.enrollment_token.minted``.
    """
    device = device_lock(device_id=device_id)
    if device.status != Device.Status.PENDING:
        raise DeviceNotPending(device_id=device.pk, status=device.status)
    now = timezone.now()
    EnrollmentToken.objects.filter(
        device=device, used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now, updated_at=now)
    token = secrets.token_urlsafe(24)
    expires_at = now + timedelta(hours=settings.ENROLLMENT_TOKEN_TTL_HOURS)
    record = EnrollmentToken.objects.create(
        lender_id=device.lender_id, device=device, token_hash=_sha256(token), expires_at=expires_at
    )
    audit_event_record(
        actor=actor,
        action=DevicesAction.ENROLLMENT_CODE_MINTED,
        target=device,
        data={"token_id": record.pk, "expires_at": expires_at},
    )
    return MintedToken(
        token=token, expires_at=expires_at, payload=provisioning_payload(token=token)
    )


@dataclass(frozen=True, slots=True)
class Enrollment:
    device: Device
    device_secret: str  # returned once; only its hash is kept
    lender_public_key: str
    key_version: int


def device_enroll(
    *,
    token: str,
    imei: str,
    serial: str,
    model_name: str,
    android_version: str,
    agent_version: str,
    fcm_token: str,
    agent_public_key: str,
    actor: Actor,
) -> Enrollment:
    """Bind the phone that scanned the QR code to its device record, once.

    Locks the token row, then the device. A code that is unknown, revoked,
    used or expired, or a phone whose IMEI is not the one sold, is refused:
    nothing is bound, and the refusal is audited in its own transaction so it
    stays on the record. Emits ``devices.device.enrolled`` or
    ``devices.enrollment.refused``.
    """
    try:
        return _enroll(token=token, imei=imei, serial=serial, model_name=model_name,
                       android_version=android_version, agent_version=agent_version,
                       fcm_token=fcm_token, agent_public_key=agent_public_key, actor=actor)  # fmt: skip
    except EnrollmentRefused as exc:
        with transaction.atomic():
            record = (
                EnrollmentToken.objects.filter(token_hash=_sha256(token))
                .select_related("device")
                .first()
            )
            audit_event_record(
                actor=actor,
                action=DevicesAction.ENROLLMENT_REFUSED,
                target=record.device if record else None,
                data={"problem": exc.code, "imei_last4": imei[-4:]},
            )
        raise


@transaction.atomic
def _enroll(
    *, token: str, imei: str, serial: str, model_name: str, android_version: str, agent_version: str,
    fcm_token: str, agent_public_key: str, actor: Actor,
) -> Enrollment:  # fmt: skip
    # Lock order device, then token (as enrollment_token_mint does), so a fresh
    # code minted while the phone enrolls cannot deadlock with it.
    token_hash = _sha256(token)
    device_id = (
        EnrollmentToken.objects.filter(token_hash=token_hash)
        .values_list("device_id", flat=True)
        .first()
    )
    if device_id is None:
        raise EnrollmentTokenInvalid()
    device_lock(device_id=device_id)
    record = enrollment_token_lock_by_hash(token_hash=token_hash)
    if record is None or record.revoked_at is not None:
        raise EnrollmentTokenInvalid()
    if record.used_at is not None:
        raise EnrollmentTokenUsed()
    now = timezone.now()
    if record.expires_at <= now:
        raise EnrollmentTokenExpired()
    device = record.device
    try:
        reported = imei_normalise(imei)
    except Exception as exc:
        raise EnrollmentImeiMismatch() from exc
    if reported != device.imei or device.status != Device.Status.PENDING:
        raise EnrollmentImeiMismatch()
    secret = secrets.token_urlsafe(32)
    record.used_at = now
    record.save(update_fields=["used_at", "updated_at"])
    device.status = Device.Status.ENROLLED
    device.serial, device.model_name = serial, model_name or device.model_name
    device.android_version, device.agent_version = android_version, agent_version
    device.fcm_token, device.agent_public_key = fcm_token, agent_public_key
    device.credential_hash = _sha256(secret)
    device.enrolled_at = device.last_seen_at = now
    device.save()
    _state_write(device=device, level=DeviceState.Level.NORMAL, actor=actor, reason="Enrolled.")
    audit_event_record(
        actor=actor,
        action=DevicesAction.DEVICE_ENROLLED,
        target=device,
        data={"token_id": record.pk, "serial": serial, "android_version": android_version,
              "agent_version": agent_version, "key_version": CURRENT_KEY_VERSION},
    )  # fmt: skip
    return Enrollment(
        device=device,
        device_secret=secret,
        lender_public_key=lender_public_key_b64(lender_slug=device.lender.slug),
        key_version=CURRENT_KEY_VERSION,
    )


# --- desired state -------------------------------------------------------------------


def _state_write(
    *, device: Device, level: str, actor: Actor, reason: str, **content: Any
) -> DeviceState:
    """Append the next signed version for ``device`` (caller holds the device lock)."""
    version = device.desired_version + 1
    document = state_document(device_id=device.pk, version=version, level=level, issued_at=timezone.now(),
                              locale=device.loan.customer.locale, **content)  # fmt: skip
    state = DeviceState.objects.create(
        lender_id=device.lender_id, device=device, version=version, level=level, document=document,
        signature=sign_document(lender_slug=device.lender.slug, document=document),
        key_version=document["key_version"],
    )  # fmt: skip
    Device.objects.filter(pk=device.pk).update(desired_version=version, updated_at=timezone.now())
    device.desired_version = version
    audit_event_record(actor=actor, action=DevicesAction.STATE_CHANGED, target=device, reason=reason,
                       data={"version": version, "level": level})  # fmt: skip
    return state


def device_state_set(
    *, device_id: int, level: str, actor: Actor, reason: str, **content: Any
) -> DeviceState:
    """Change what the phone should do: one signed, versioned state, one audit event.

    Locks the device. A released phone can never be restricted again: the
    attempt is refused and audited (in its own transaction, so the record
    survives the error). Emits ``devices.state.changed`` or
    ``devices.state.refused``.
    """
    try:
        with transaction.atomic():
            device = device_lock(device_id=device_id)
            if device.status == Device.Status.RELEASED:
                raise DeviceReleased(device_id=device.pk)
            return _state_write(device=device, level=level, actor=actor, reason=reason, **content)
    except DeviceReleased:
        with transaction.atomic():
            audit_event_record(actor=actor, action=DevicesAction.STATE_REFUSED, target=Device.objects.get(pk=device_id),
                               data={"level": level, "problem": "device_released"}, reason=reason)  # fmt: skip
        raise


@dataclass(frozen=True, slots=True)
class CheckIn:
    state: DeviceState | None  # the newest state, when the phone has an older one


@transaction.atomic
def device_check_in(
    *, device_id: int, applied_version: int, agent_version: str, battery_percent: int | None,
    iccid_sha256: str, ip: str | None,
) -> CheckIn:  # fmt: skip
    """Record that the phone is alive and hand it the newest state if it is behind.

    Safe to repeat. A heartbeat is not audited; a changed SIM (its ICCID's
    hash) is, as ``devices.device.sim_changed``.
    """
    device = device_lock(device_id=device_id)
    if device.status == Device.Status.RELEASED:
        raise DeviceReleased(device_id=device.pk)
    if iccid_sha256 and device.iccid_sha256 and iccid_sha256 != device.iccid_sha256:
        audit_event_record(actor=Actor(type=ActorType.DEVICE, id=str(device.pk), ip=ip),
                           action=DevicesAction.SIM_CHANGED, target=device,
                           data={"old": {"iccid_sha256": device.iccid_sha256}, "new": {"iccid_sha256": iccid_sha256}})  # fmt: skip
    Device.objects.filter(pk=device.pk).update(
        last_seen_at=timezone.now(), agent_version=agent_version or device.agent_version,
        battery_percent=battery_percent, iccid_sha256=iccid_sha256 or device.iccid_sha256,
        last_ip=ip or "", updated_at=timezone.now(),
    )  # fmt: skip
    if applied_version >= device.desired_version:
        return CheckIn(state=None)
    return CheckIn(state=DeviceState.objects.get(device=device, version=device.desired_version))


@transaction.atomic
def device_ack(*, device_id: int, version: int, error_code: str, actor: Actor) -> Device:
    """The phone applied ``version`` (or failed to, with ``error_code``).

    Acknowledgements only move forward: a late ack of an older version changes
    nothing, so repeating one is harmless. Emits ``devices.state.acknowledged``
    or ``devices.state.failed``.
    """
    device = device_lock(device_id=device_id)
    if version > device.desired_version or version < 1:
        raise AckVersionUnknown(version=version)
    if error_code:
        if device.last_ack_error != f"{version}:{error_code}":
            device.last_ack_error = f"{version}:{error_code}"
            device.save(update_fields=["last_ack_error", "updated_at"])
            audit_event_record(actor=actor, action=DevicesAction.STATE_FAILED, target=device,
                               data={"version": version, "error": error_code})  # fmt: skip
        return device
    if version > device.acked_version:
        device.acked_version, device.acked_at, device.last_ack_error = version, timezone.now(), ""
        device.save(update_fields=["acked_version", "acked_at", "last_ack_error", "updated_at"])
        audit_event_record(actor=actor, action=DevicesAction.STATE_ACKNOWLEDGED, target=device,
                           data={"version": version})  # fmt: skip
    return device


def device_authenticate(*, device_id: int, secret: str) -> Device | None:
    """The device whose credential ``secret`` is, or None (constant-time comparison)."""
    device = Device.objects.filter(pk=device_id).first()
    if device is None or not device.credential_hash:
        return None
    if not hmac.compare_digest(device.credential_hash, _sha256(secret)):
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
    and records nothing. Emits ``devices.device.event_reported``.
    """
    device = device_lock(device_id=device_id)
    existing = DeviceEvent.objects.filter(device=device, event_id=event_id).first()
    if existing is not None:
        return existing, False
    event = DeviceEvent.objects.create(lender_id=device.lender_id, device=device, event_id=event_id, kind=kind,
                                       occurred_at=occurred_at, detail=detail)  # fmt: skip
    audit_event_record(actor=actor, action=DevicesAction.EVENT_REPORTED, target=device,
                       data={"event_id": event_id, "kind": kind, "occurred_at": occurred_at, "detail": detail})  # fmt: skip
    return event, True


@transaction.atomic
def device_fcm_token_set(*, device_id: int, fcm_token: str, actor: Actor) -> Device:
    """The phone's new push address. Audited when it changes (not the token itself)."""
    device = device_lock(device_id=device_id)
    if device.fcm_token != fcm_token:
        device.fcm_token = fcm_token
        device.save(update_fields=["fcm_token", "updated_at"])
        audit_event_record(actor=actor, action=DevicesAction.PUSH_ADDRESS_CHANGED, target=device,
                           data={"token_sha256": _sha256(fcm_token)})  # fmt: skip
    return device
