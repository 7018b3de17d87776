"""Writes of the desired state: one signed version per change, its push queued with it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.devices.errors import DeviceReleased
from apps.devices.events import DevicesAction
from apps.devices.keys import lender_public_key_b64
from apps.devices.locks import device_lock
from apps.devices.models import Device, DeviceState, LenderKey
from apps.devices.selectors import lender_key_version_current
from apps.devices.services.push import push_nudges_enqueue
from apps.devices.state import CONTENT_FIELDS, sign_document, state_document
from apps.lenders.models import Lender


def state_write(
    *, device: Device, level: str, actor: Actor, reason: str, **content: Any
) -> DeviceState:
    """Append the next signed version for ``device`` and queue its push (caller holds the
    device lock and runs in a transaction).

    The state is signed with the key version the phone trusts. When the lender
    has moved to a newer key, the state announces it (``next_key``), still
    signed by the old one; the phone's ack of that state moves it over.
    """
    version = device.desired_version + 1
    current_key = lender_key_version_current(lender_id=device.lender_id)
    next_key = None
    if current_key > device.key_version:
        slug = device.lender.slug
        next_key = {"version": current_key,
                    "public_key": lender_public_key_b64(lender_slug=slug, version=current_key)}  # fmt: skip
    document = state_document(
        device_id=device.pk, version=version, level=level, issued_at=timezone.now(),
        locale=device.loan.customer.locale, key_version=device.key_version, next_key=next_key,
        **content,
    )  # fmt: skip
    state = DeviceState.objects.create(
        lender_id=device.lender_id, device=device, version=version, level=level, document=document,
        signature=sign_document(lender_slug=device.lender.slug, document=document),
        key_version=document["key_version"],
    )  # fmt: skip
    Device.objects.filter(pk=device.pk).update(desired_version=version, updated_at=timezone.now())
    device.desired_version = version
    audit_event_record(actor=actor, action=DevicesAction.STATE_CHANGED, target=device, reason=reason,
                       data={"version": version, "level": level})  # fmt: skip
    push_nudges_enqueue(nudges=[(device.lender_id, device.pk, version)])
    return state


def _release_pending(device: Device) -> bool:
    """The phone was told it is free and has not acked yet: it is free all the same."""
    return DeviceState.objects.filter(
        device=device, version=device.desired_version, level=DeviceState.Level.RELEASED
    ).exists()


def device_state_set(
    *, device_id: int, level: str, actor: Actor, reason: str, **content: Any
) -> DeviceState:
    """Change what the phone should do: one signed, versioned state, one audit event, one push.

    Locks the device. A released phone can never be restricted again: the
    attempt is refused and audited (in its own transaction, so the record
    survives the error). Emits ``devices.state.changed`` or
    ``devices.state.refused``.
    """
    try:
        with transaction.atomic():
            device = device_lock(device_id=device_id)
            if device.status == Device.Status.RELEASED or _release_pending(device):
                raise DeviceReleased(device_id=device.pk)
            return state_write(device=device, level=level, actor=actor, reason=reason, **content)
    except DeviceReleased:
        with transaction.atomic():
            audit_event_record(actor=actor, action=DevicesAction.STATE_REFUSED, target=Device.objects.get(pk=device_id),
                               data={"level": level, "problem": "device_released"}, reason=reason)  # fmt: skip
        raise


@transaction.atomic
def lender_signing_key_rotate(*, lender_id: int, actor: Actor, reason: str) -> LenderKey:
    """Move the lender to its next state-signing key.

    Locks the lender. New phones enroll with the new key at once; each
    enrolled phone gets its current state re-issued, signed by the key it
    trusts and announcing the new one (``device_key_announce_task``, after
    commit, in batches), and trusts the new key once it acknowledges that
    state. Emits ``devices.lender_key.rotated``.
    """
    lender = Lender.objects.select_for_update().get(pk=lender_id)
    version = lender_key_version_current(lender_id=lender.pk) + 1
    key = LenderKey.objects.create(lender=lender, version=version,
                                   public_key=lender_public_key_b64(lender_slug=lender.slug, version=version))  # fmt: skip
    audit_event_record(actor=actor, action=DevicesAction.LENDER_KEY_ROTATED, target=key, reason=reason,
                       data={"version": version, "public_key": key.public_key})  # fmt: skip

    def announce() -> None:
        from apps.devices.tasks import device_key_announce_task

        device_key_announce_task.delay(lender_id=lender.pk)

    transaction.on_commit(announce)
    return key


def device_key_announce(*, lender_id: int, batch: int = 200) -> int:
    """Re-issue the current state of each enrolled phone that trusts an older key.

    One transaction per batch of devices (locked in id order, the global
    order); the new state has the same content, signed by the phone's key and
    announcing the lender's current one. Safe to repeat: a phone whose latest
    state already announces the current key is skipped. Returns how many
    states were issued.
    """
    current = lender_key_version_current(lender_id=lender_id)
    issued, after = 0, 0
    while True:
        with transaction.atomic():
            devices = list(
                Device.objects.select_for_update(of=("self",))
                .select_related("lender", "loan__customer")
                .filter(lender_id=lender_id, status=Device.Status.ENROLLED, key_version__lt=current,
                        pk__gt=after)
                .order_by("pk")[:batch]
            )  # fmt: skip
            if not devices:
                return issued
            after = devices[-1].pk
            latest = {s.device_id: s for s in DeviceState.objects.filter(
                device__in=devices).order_by("device_id", "-version").distinct("device_id")}  # fmt: skip
            for device in devices:
                state = latest.get(device.pk)
                if (
                    state is None
                    or (state.document.get("next_key") or {}).get("version") == current
                ):
                    continue
                content = {k: state.document[k] for k in CONTENT_FIELDS if k in state.document}
                state_write(device=device, level=state.level, actor=Actor.system(),
                            reason="A new lender key is announced.", **content)  # fmt: skip
                issued += 1


def device_release(*, device_id: int, actor: Actor, reason: str) -> DeviceState:
    """Set the phone free: the ``released`` state, pushed until the phone acknowledges it.

    The phone is marked released when it acks that state (``device_ack``);
    from then on no state can be written for it. Emits
    ``devices.state.changed`` (level ``released``).
    """
    return device_state_set(device_id=device_id, level=DeviceState.Level.RELEASED, actor=actor,
                            reason=reason)  # fmt: skip
