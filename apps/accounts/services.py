"""Writes for accounts: two-factor setup and verification, lockouts.

An event about a user goes on the chain of the user's lender, which the caller reads from
``apps.lenders`` (above this app) and passes as ``lender_id`` (None: the platform chain).
"""

from __future__ import annotations

import hashlib
from base64 import b32encode
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone
from django_otp import match_token, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.errors import OperatorSelfEnrolmentRefused, OtpAlreadyConfigured, OtpTokenInvalid
from apps.accounts.events import AccountsAction
from apps.accounts.models import User
from apps.core.actor import Actor
from apps.core.audit import audit_record, audit_recorded_since

BACKUP_TOKEN_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


@transaction.atomic
def operator_create(*, username: str, email: str, password: str, actor: Actor) -> User:
    """Create a platform operator (a superuser: sees every lender). Emits ``accounts.user.created``."""
    user = get_user_model()(
        username=username, email=email, is_staff=True, is_superuser=True, is_active=True
    )
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    audit_record(
        actor=actor,
        action=AccountsAction.USER_CREATED,
        target=user,
        data={"new": {"superuser": True}},
    )
    return user


@transaction.atomic
def user_password_set(*, user: User, password: str, lender_id: int | None, actor: Actor) -> None:
    """Set a new password (validated). Emits ``accounts.user.password_changed`` on the chain
    of ``lender_id``, the user's lender (None for a platform operator)."""
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        actor=actor, action=AccountsAction.PASSWORD_CHANGED, target=user, lender_id=lender_id
    )


@transaction.atomic
def totp_device_provision(*, user: User, lender_id: int | None, actor: Actor) -> TOTPDevice:
    """Replace the user's second factor with a new, confirmed authenticator.

    For operators (and the demo) who hand the secret over themselves; an agent
    normally enrolls at first login instead. Emits ``accounts.totp_device.confirmed``.
    """
    get_user_model().objects.select_for_update().get(pk=user.pk)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=True)
    audit_record(
        actor=actor,
        action=AccountsAction.TOTP_DEVICE_CONFIRMED,
        target=user,
        lender_id=lender_id,
        data={"device_id": device.pk, "provisioned_by_operator": True},
    )
    return device


@transaction.atomic
def totp_device_start(*, user: User) -> TOTPDevice:
    """The user's unconfirmed authenticator, created on first call and reused after.

    Reusing it means reloading the setup page shows the same QR code, so a
    code from an app that already scanned it still works.

    Audit: none, an unconfirmed authenticator opens nothing; ``totp_device_confirm``
    records the one confirmed.
    """
    if user.is_superuser:
        raise OperatorSelfEnrolmentRefused()
    if user_has_device(user, confirmed=True):
        raise OtpAlreadyConfigured()
    locked_user = get_user_model().objects.select_for_update().get(pk=user.pk)
    device = TOTPDevice.objects.filter(user=locked_user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=locked_user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


@dataclass(frozen=True, slots=True)
class TotpConfirmation:
    device: TOTPDevice
    backup_tokens: list[str]


@transaction.atomic
def totp_device_confirm(
    *, user: User, token: str, lender_id: int | None, actor: Actor
) -> TotpConfirmation:
    """Confirm the authenticator with a code from it and issue backup codes.

    The caller marks the session verified with the returned device.

    Locks the user row so two submits of one code confirm once. Emits
    ``accounts.totp_device.confirmed``. The backup codes are returned once and
    are never shown again.
    """
    get_user_model().objects.select_for_update().get(pk=user.pk)
    if user.is_superuser:
        raise OperatorSelfEnrolmentRefused()
    if user_has_device(user, confirmed=True):
        raise OtpAlreadyConfigured()
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=False)
        .order_by("id")
        .first()
    )
    if device is None or not device.verify_token(token):
        raise OtpTokenInvalid()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    static = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    tokens = [StaticToken.random_token() for _ in range(BACKUP_TOKEN_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=t) for t in tokens])
    audit_record(
        actor=actor,
        action=AccountsAction.TOTP_DEVICE_CONFIRMED,
        target=user,
        lender_id=lender_id,
        data={"device_id": device.pk, "backup_tokens_issued": len(tokens)},
    )
    return TotpConfirmation(device=device, backup_tokens=tokens)


def user_otp_verify(*, user: User, token: str, lender_id: int | None, actor: Actor) -> Device:
    """Check a code from the authenticator or a backup code; return the device that took it.

    The caller marks the session verified with that device.

    Deliberately not one transaction: django-otp counts a wrong code against the
    device (its throttle) and that count, like the
    ``accounts.user.verification_failed`` event, must survive the error we raise.
    A backup code works once. Emits ``accounts.user.verified`` on success.
    """
    device = match_token(user, token)
    if device is None:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=AccountsAction.USER_VERIFICATION_FAILED,
                target=user,
                lender_id=lender_id,
            )
        raise OtpTokenInvalid()
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AccountsAction.USER_VERIFIED,
            target=user,
            lender_id=lender_id,
            data={"device": type(device).__name__},
        )
    return device


@transaction.atomic
def user_lockout_record(*, username: str, lender_id: int | None, actor: Actor) -> bool:
    """Record that django-axes locked ``username`` out, once per cool-off window.

    axes reports every refused attempt during a lockout; recording each would
    let an anonymous caller grow the trail and contend on a lender's chain at
    will. What was typed as a username is kept only as a hash when it names no
    user (people type passwords into the wrong field). Emits
    ``accounts.user.locked_out``; returns whether it did.
    """
    user = get_user_model().objects.filter(username=username).first()
    digest = hashlib.sha256(username.encode()).hexdigest()
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    recent = (
        audit_recorded_since(
            action=AccountsAction.USER_LOCKED_OUT, since=since, target_id=str(user.pk)
        )
        if user is not None
        else audit_recorded_since(
            action=AccountsAction.USER_LOCKED_OUT, since=since, data={"username_sha256": digest}
        )
    )
    if recent:
        return False
    audit_record(
        actor=actor,
        action=AccountsAction.USER_LOCKED_OUT,
        target=user,
        lender_id=lender_id,
        data={"user_id": user.pk} if user is not None else {"username_sha256": digest},
    )
    return True


def totp_secret_base32(device: TOTPDevice) -> str:
    """The authenticator secret as people type it into an app (base32, no padding)."""
    return b32encode(device.bin_key).decode("ascii").rstrip("=")
