"""Rotation of a lender's state-signing key: the next key, then each phone told of it.

The keys themselves are derived from the environment (``apps.devices.keys``);
a phone learns the new public key from a state signed by the old one, re-issued
by the state writer with the same content.
"""

from __future__ import annotations

from django.db import transaction

from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.core.outbox import task_enqueue_on_commit
from apps.devices.errors import DeviceReleased
from apps.devices.events import DevicesAction
from apps.devices.keys import lender_public_key_b64
from apps.devices.models import Device, DeviceState, LenderKey
from apps.devices.selectors import lender_key_version_current
from apps.devices.services.state_writer import state_reissue
from apps.lenders.models import Lender


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
    key = LenderKey.objects.create(
        lender=lender,
        version=version,
        public_key=lender_public_key_b64(lender_slug=lender.slug, version=version),
    )
    audit_event_record(
        actor=actor,
        action=DevicesAction.LENDER_KEY_ROTATED,
        target=key,
        reason=reason,
        data={"version": version, "public_key": key.public_key},
    )

    task_enqueue_on_commit("devices.device_key_announce", lender_id=lender.pk)
    return key


def device_key_announce(*, lender_id: int, batch: int = 200) -> int:
    """Re-issue the current state of each enrolled phone that trusts an older key.

    One transaction per batch of devices (locked in id order, the global
    order); the new state has the same content and announces the lender's
    current key. Safe to repeat: a phone whose newest state already announces
    it is skipped. Returns how many states were issued.
    """
    current = lender_key_version_current(lender_id=lender_id)
    issued, after = 0, 0
    while True:
        with transaction.atomic():
            devices = list(
                Device.objects.select_for_update(of=("self",))
                .select_related("loan__customer")
                .filter(
                    lender_id=lender_id,
                    status=Device.Status.ENROLLED,
                    key_version__lt=current,
                    pk__gt=after,
                )
                .order_by("pk")[:batch]
            )
            if not devices:
                return issued
            after = devices[-1].pk
            announced = set(
                DeviceState.objects.filter(
                    device__in=devices, document__next_key__version=current
                ).values_list("device_id", flat=True)
            )
            for device in devices:
                if device.pk in announced:
                    continue
                try:
                    state_reissue(
                        device=device, actor=Actor.system(), reason="A new lender key is announced."
                    )
                except DeviceReleased:
                    continue
                issued += 1
