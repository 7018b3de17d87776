"""Phones that have not taken their newest state: recorded once per state, so the lender
hears of a phone left behind (``device.out_of_sync``) as it hears of every other change."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from apps.audit.services import AuditEntry, audit_events_record
from apps.core.actor import Actor
from apps.devices.events import DevicesAction
from apps.devices.models import Device, DeviceState
from apps.devices.selectors import device_list_out_of_sync


@transaction.atomic
def devices_out_of_sync_record(*, longer_than: timedelta | None = None, batch: int = 1000) -> int:
    """Record each enrolled phone behind its desired state for longer than ``longer_than``
    (``DEVICE_OUT_OF_SYNC_MINUTES``), once per desired version: the phone's
    ``out_of_sync_version`` remembers the state it was reported behind on, so a run again
    (beat every few minutes) records nothing new, and a phone that falls behind a later
    state is reported again. At most ``batch`` phones a run; returns how many.

    Locks those phones (skipping any another transaction holds: the next run takes them),
    then each lender's chain. Emits ``devices.device.out_of_sync`` with the loan, the
    versions and since when the phone has been behind.
    """
    longer_than = longer_than or timedelta(minutes=settings.DEVICE_OUT_OF_SYNC_MINUTES)
    since = DeviceState.objects.filter(
        device_id=OuterRef("pk"), version=OuterRef("desired_version")
    ).values("created_at")[:1]
    behind = device_list_out_of_sync(
        Device.objects.filter(
            status=Device.Status.ENROLLED, out_of_sync_version__lt=F("desired_version")
        ),
        longer_than=longer_than,
        as_of=timezone.now(),
    )
    devices = list(
        behind.select_for_update(of=("self",), skip_locked=True)
        .annotate(behind_since=Subquery(since))
        .order_by("lender_id", "id")[:batch]
    )
    entries: dict[int, list[AuditEntry]] = {}
    for device in devices:
        device.out_of_sync_version = device.desired_version
        entries.setdefault(device.lender_id, []).append(
            AuditEntry(
                actor=Actor.system(),
                action=DevicesAction.OUT_OF_SYNC,
                target=device,
                data={
                    "loan_id": device.loan_id,
                    "desired_version": device.desired_version,
                    "acked_version": device.acked_version,
                    "behind_since": device.behind_since,
                },
            )
        )
    Device.objects.bulk_update(devices, ["out_of_sync_version"])
    for lender_id, lender_entries in sorted(entries.items()):
        audit_events_record(lender_id=lender_id, entries=lender_entries)
    return len(devices)
