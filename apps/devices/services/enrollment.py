"""Writes for the sale of a phone: registering it, enrollment codes, enrollment."""

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
from apps.core.actor import Actor
from apps.devices.errors import (
    DeviceNotPending,
    EnrollmentImeiMismatch,
    EnrollmentRefused,
    EnrollmentTokenExpired,
    EnrollmentTokenInvalid,
    EnrollmentTokenUsed,
    ImeiInUse,
    ImeiInvalid,
)
from apps.devices.events import DevicesAction
from apps.devices.keys import enrollment_code, lender_public_key_b64
from apps.devices.locks import device_lock, enrollment_token_lock_by_hash
from apps.devices.models import Device, DeviceState, EnrollmentToken
from apps.devices.provisioning import provisioning_payload
from apps.devices.selectors import lender_key_version_current
from apps.devices.services.offline import offline_epoch, offline_terms
from apps.devices.services.state_writer import state_write_locked


def sha256_hex(value: str) -> str:
    """How credentials, enrollment codes and push tokens are kept: their SHA-256 only."""
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
def device_register(
    *, loan_id: int, lender_id: int, imei: str, brand: str, model_name: str, actor: Actor
) -> Device:
    """Record the phone sold on loan ``loan_id`` of ``lender_id``, pending enrollment.

    The caller holds the loan's lock (the global order: loan, then its
    phones), so a cancellation of the loan cannot pass the phone being
    recorded. An IMEI already bound to a loan that is not closed is refused
    (a partial unique index backs this up against races). Emits
    ``devices.device.registered``.
    """
    number = imei_normalise(imei)
    device = Device(
        lender_id=lender_id,
        loan_id=loan_id,
        imei=number,
        brand=brand.strip(),
        model_name=model_name.strip(),
    )
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
            "loan_id": loan_id,
            "imei": number,
            "brand": device.brand,
            "model": device.model_name,
        },
    )
    return device


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str  # in the QR code; made again from the master key while it is live
    expires_at: Any
    payload: dict[str, Any]


NONCE_BYTES = 16


def _code_of(record: EnrollmentToken, *, lender_slug: str) -> MintedToken:
    token = enrollment_code(
        lender_slug=lender_slug, device_id=record.device_id, token_id=record.pk, nonce=record.nonce
    )
    return MintedToken(
        token=token, expires_at=record.expires_at, payload=provisioning_payload(token=token)
    )


def _mint_locked(device: Device, *, actor: Actor) -> MintedToken:
    """Revoke the device's unused codes and mint one (the caller holds the device's lock)."""
    if device.status != Device.Status.PENDING:
        raise DeviceNotPending(device_id=device.pk, status=device.status)
    now = timezone.now()
    EnrollmentToken.objects.filter(
        device=device, used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now, updated_at=now)
    nonce = secrets.token_hex(NONCE_BYTES)
    # the code names its row, so the row comes first: until the code's hash replaces it, the
    # hash column holds the nonce, which no code's hash (64 characters) can equal
    record = EnrollmentToken.objects.create(
        lender_id=device.lender_id,
        device=device,
        token_hash=nonce,
        nonce=nonce,
        expires_at=now + timedelta(hours=settings.ENROLLMENT_TOKEN_TTL_HOURS),
    )
    minted = _code_of(record, lender_slug=device.lender.slug)
    record.token_hash = sha256_hex(minted.token)
    record.save(update_fields=["token_hash", "updated_at"])
    audit_event_record(
        actor=actor,
        action=DevicesAction.ENROLLMENT_CODE_MINTED,
        target=device,
        data={"token_id": record.pk, "expires_at": record.expires_at},
    )
    return minted


@transaction.atomic
def enrollment_token_mint(*, device_id: int, actor: Actor) -> MintedToken:
    """A fresh single-use enrollment code for a sold, not yet enrolled phone.

    Locks the device. Earlier unused codes of the device are revoked, so only
    the code minted now works. The code expires after
    ``ENROLLMENT_TOKEN_TTL_HOURS``; only its hash and the nonce it is derived
    from are stored (``apps.devices.keys.enrollment_code``). Emits
    ``devices.enrollment_token.minted``.
    """
    return _mint_locked(device_lock(device_id=device_id), actor=actor)


@transaction.atomic
def enrollment_token_live_or_mint(*, device_id: int, actor: Actor) -> MintedToken:
    """The phone's live enrollment code, or a fresh one when it has none.

    Live: neither used, revoked nor expired, and made again from the master key to the
    hash stored (a code minted before codes were derived, or under another master key,
    cannot be made again and counts as none). Showing the live code changes nothing, so a
    reload of the counter's page leaves working the code a phone may already have
    scanned. Locks the device, so two views at once mint one code. Emits
    ``devices.enrollment_token.minted`` only when it mints
    (``enrollment_token_mint``).
    """
    device = device_lock(device_id=device_id)
    if device.status == Device.Status.PENDING:
        live = (
            EnrollmentToken.objects.filter(
                device=device,
                used_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .exclude(nonce="")
            .order_by("-pk")
            .first()
        )
        if live is not None:
            shown = _code_of(live, lender_slug=device.lender.slug)
            if hmac.compare_digest(live.token_hash, sha256_hex(shown.token)):
                return shown
    return _mint_locked(device, actor=actor)


@dataclass(frozen=True, slots=True)
class Enrollment:
    device: Device
    device_secret: str  # returned once; only its hash is kept
    lender_public_key: str
    key_version: int
    offline: dict[str, Any]  # the offline unlock terms, returned once (docs/devices.md)


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
    push_address_kind: str = "token",
) -> Enrollment:
    """Bind the phone that scanned the QR code to its device record, once.

    Locks the device, then the token row (the order ``enrollment_token_mint``
    takes). A code that is unknown, revoked, used or expired, or a phone whose
    IMEI is not the one sold, is refused:
    nothing is bound, and the refusal is audited in its own transaction so it
    stays on the record. Emits ``devices.device.enrolled`` or
    ``devices.enrollment.refused``.
    """
    try:
        return _enroll(
            token=token,
            imei=imei,
            serial=serial,
            model_name=model_name,
            android_version=android_version,
            agent_version=agent_version,
            fcm_token=fcm_token,
            agent_public_key=agent_public_key,
            actor=actor,
            push_address_kind=push_address_kind,
        )
    except EnrollmentRefused as exc:
        with transaction.atomic():
            record = (
                EnrollmentToken.objects.filter(token_hash=sha256_hex(token))
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
    push_address_kind: str,
) -> Enrollment:
    # Lock order device, then token (as enrollment_token_mint does), so a fresh
    # code minted while the phone enrolls cannot deadlock with it.
    token_hash = sha256_hex(token)
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
    device.push_address_kind = push_address_kind
    device.credential_hash = sha256_hex(secret)
    device.key_version = lender_key_version_current(lender_id=device.lender_id)
    device.enrolled_at = device.last_seen_at = now
    device.token_epoch = offline_epoch(device=device, lender=device.lender)
    device.save()
    state_write_locked(
        device=device, level=DeviceState.Level.NORMAL, actor=actor, reason="Enrolled."
    )
    audit_event_record(
        actor=actor,
        action=DevicesAction.DEVICE_ENROLLED,
        target=device,
        data={
            "loan_id": device.loan_id,
            "token_id": record.pk,
            "serial": serial,
            "android_version": android_version,
            "agent_version": agent_version,
            "key_version": device.key_version,
        },
    )
    return Enrollment(
        device=device,
        device_secret=secret,
        lender_public_key=lender_public_key_b64(
            lender_slug=device.lender.slug, version=device.key_version
        ),
        key_version=device.key_version,
        offline=offline_terms(device=device, lender=device.lender),
    )


@transaction.atomic
def device_registrations_void(*, loan_id: int, lender_id: int, actor: Actor, reason: str) -> int:
    """Free the phones registered to a loan cancelled before they enrolled: each waiting phone
    is marked released, so its IMEI is free for another sale and its enrollment code is
    refused. Returns how many. The caller has checked none ever enrolled. Emits
    ``devices.device.voided``."""
    now = timezone.now()
    voided = 0
    for device in (
        Device.objects.select_for_update()
        .filter(loan_id=loan_id, lender_id=lender_id, status=Device.Status.PENDING)
        .order_by("pk")
    ):
        device.status, device.released_at = Device.Status.RELEASED, now
        device.save(update_fields=["status", "released_at", "updated_at"])
        audit_event_record(
            actor=actor,
            action=DevicesAction.DEVICE_VOIDED,
            target=device,
            reason=reason,
            data={"imei": device.imei, "status": {"old": "pending", "new": "released"}},
        )
        voided += 1
    return voided
