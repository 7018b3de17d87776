"""Writes of the desired state: versions built in SQL, for one phone or many, pushed after.

``device_states_write_shown`` is the one writer (``device_states_write`` takes one
change per phone and calls it). In one statement it moves each
phone's ``desired_version`` on (row locks on the devices), appends the new
``DeviceState`` rows with their documents built by ``jsonb_build_object``,
and queues one push per phone in the outbox; then it appends one audit event
per state, built in SQL. The restriction sweep calls it with thousands of
changes; a payment, a pause or an agent's action with one.

A released phone, or one whose newest state is ``released`` (waiting for
its ack), takes no state but the release again: it is left out, and the
callers that change one phone refuse and audit the attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import audit_event_record, audit_events_record_select
from apps.core.actor import Actor
from apps.core.sql import array_literal
from apps.devices.desired_state import CONTENT_FIELDS, OFFLINE_LEASE, alarm_days
from apps.devices.errors import DeviceReleased
from apps.devices.events import DevicesAction
from apps.devices.keys import lender_public_key_b64
from apps.devices.locks import device_lock, devices_lock
from apps.devices.models import Device, DeviceState
from apps.devices.selectors import lender_key_version_current
from apps.devices.services.push import relay_after_commit
from apps.devices.sql import DEVICE_STATE_AUDIT_ROWS, DEVICE_STATES_WRITE
from apps.lenders.country_rules import always_allowed_packages
from apps.lenders.models import Lender


@dataclass(frozen=True, slots=True)
class StateChange:
    """What one phone should do from now on."""

    device_id: int
    level: str
    locale: str
    wallpaper_text: str = ""
    lock_screen_text: str = ""
    blocked_packages: tuple[str, ...] = ()
    blocked_categories: tuple[str, ...] = ()
    alarm_times: tuple[str, ...] = ()
    always_allowed_numbers: tuple[str, ...] = ()
    # applied by the phone if it cannot check in before the lease ends; never
    # harsher than what the loan would reach by then, never a lock when current
    fallback_level: str = "normal"

    @classmethod
    def of(cls, *, device_id: int, level: str, locale: str, **content: Any) -> StateChange:
        lists = ("blocked_packages", "blocked_categories", "alarm_times", "always_allowed_numbers")
        fields: dict[str, Any] = {k: tuple(v) if k in lists else v for k, v in content.items()}
        return cls(device_id=device_id, level=level, locale=locale, **fields)


def _sorted_json(values: tuple[str, ...]) -> str:
    return json.dumps(sorted(values))


def device_states_write(
    *, lender_id: int, changes: list[StateChange], actor: Actor, reason: str, audit: bool = True
) -> dict[int, int]:
    """Give each phone in ``changes`` its next desired state; returns device id -> version.

    Must run in the caller's transaction. Locks the devices in id order (the
    caller already holds their loans: the global order), then writes with a
    fresh snapshot, so a release committed while it waited is seen. Phones that are
    not enrolled, or are released or being released, are left out of the
    result. Signs nothing: the signature is made when the phone pulls the
    state. Queues each new state's push (the outbox). Emits
    ``devices.state.changed`` once per state, unless ``audit`` is False: for a
    caller whose own events name each phone and the version it was given (the
    restriction engine's ``collections.loan.stage_changed``).
    """
    if len({c.device_id for c in changes}) != len(changes):
        raise ValueError("one change per device")
    contents: dict[StateChange, int] = {}  # what a phone shows (device id 0) -> its index
    shown_as = [contents.setdefault(replace(c, device_id=0), len(contents)) for c in changes]
    return device_states_write_shown(
        lender_id=lender_id,
        device_ids=[c.device_id for c in changes],
        contents=list(contents),
        shown_as=shown_as,
        actor=actor,
        reason=reason,
        audit=audit,
    )


def device_states_write_shown(
    *,
    lender_id: int,
    device_ids: list[int],
    contents: list[StateChange],
    shown_as: list[int],
    actor: Actor,
    reason: str,
    audit: bool = True,
) -> dict[int, int]:
    """``device_states_write`` for many phones showing few distinct contents: phone
    ``device_ids[i]`` shows ``contents[shown_as[i]]`` (their device ids are ignored), so a
    caller that knows the contents (the restriction engine's ladder) builds no object per
    phone. Phones must be distinct."""
    if not device_ids:
        return {}
    if not connection.in_atomic_block:
        raise RuntimeError("device_states_write_shown runs inside the caller's transaction")
    key_version = lender_key_version_current(lender_id=lender_id)
    slug, country, tz, grace_hours = Lender.objects.values_list(
        "slug", "country", "timezone", "emergency_grace_hours"
    ).get(pk=lender_id)
    now = timezone.now()  # the app's clock, as every created_at (the outbox keeps the DB's)
    calendars: dict[tuple[str, ...], str] = {}  # the alarm days of each distinct alarm_times
    for content in contents:
        if content.alarm_times not in calendars:
            days = alarm_days(
                alarm_times=content.alarm_times, country=country, tz=tz, issued_at=now
            )
            calendars[content.alarm_times] = json.dumps(days, sort_keys=True)
    next_key = {
        "version": key_version,
        "public_key": lender_public_key_b64(lender_slug=slug, version=key_version),
    }
    params: dict[str, Any] = {
        "lender": lender_id,
        "devices": array_literal(device_ids),
        "shown_as": array_literal(shown_as),
        "levels": [c.level for c in contents],
        "locales": [c.locale for c in contents],
        "wallpapers": [c.wallpaper_text for c in contents],
        "lock_texts": [c.lock_screen_text for c in contents],
        "packages": [_sorted_json(c.blocked_packages) for c in contents],
        "categories": [_sorted_json(c.blocked_categories) for c in contents],
        "alarms": [_sorted_json(c.alarm_times) for c in contents],
        "numbers": [_sorted_json(c.always_allowed_numbers) for c in contents],
        "fallbacks": [c.fallback_level for c in contents],
        "alarm_days": [calendars[c.alarm_times] for c in contents],
        "timezone": tz,
        "grace_hours": grace_hours,
        "pin_hours": settings.SUPPORT_PIN_HOURS,
        "now": now,
        "lease": OFFLINE_LEASE,
        "allowed": json.dumps(sorted(always_allowed_packages())),
        "key_version": key_version,
        "next_key": json.dumps(next_key),
    }
    with connection.cursor() as cursor:
        devices_lock(cursor, device_ids=device_ids)
        cursor.execute(DEVICE_STATES_WRITE, params)
        written = cursor.fetchall()
    if audit:
        audit_events_record_select(
            lender_id=lender_id,
            actor=actor,
            action=DevicesAction.STATE_CHANGED,
            target_type=Device._meta.label_lower,
            reason=reason,
            rows=DEVICE_STATE_AUDIT_ROWS.as_string(),
            params={
                "ids": array_literal([w[0] for w in written]),
                "versions": array_literal([w[1] for w in written]),
                "levels": array_literal([w[2] for w in written]),
            },
        )
    if written:
        relay_after_commit()  # their pushes were queued by the statement itself
    return {device_id: version for device_id, version, _ in written}


def state_write_locked(
    *, device: Device, level: str, actor: Actor, reason: str, **content: Any
) -> DeviceState:
    """One phone's next state (the caller holds the device lock), or ``DeviceReleased``."""
    change = StateChange.of(
        device_id=device.pk, level=level, locale=device.loan.customer.locale, **content
    )
    written = device_states_write(
        lender_id=device.lender_id, changes=[change], actor=actor, reason=reason
    )
    if device.pk not in written:
        raise DeviceReleased(device_id=device.pk)
    device.desired_version = written[device.pk]
    return DeviceState.objects.get(device=device, version=device.desired_version)


def state_reissue(*, device: Device, actor: Actor, reason: str) -> DeviceState | None:
    """The phone's newest state again, as a new version with the same content (the caller
    holds the device lock): it carries the lender's current key or announces it."""
    latest = DeviceState.objects.filter(device=device).order_by("-version").first()
    if latest is None:
        return None
    content = {k: latest.document[k] for k in CONTENT_FIELDS if k in latest.document}
    return state_write_locked(
        device=device, level=latest.level, actor=actor, reason=reason, **content
    )


def device_state_set(
    *, device_id: int, level: str, actor: Actor, reason: str, **content: Any
) -> DeviceState:
    """Change what the phone should do: one versioned state, one audit event, one push.

    Locks the device. A released phone can never be restricted again, nor one
    told it is released: the attempt is refused and audited (in its own
    transaction, so the record survives the error). Emits
    ``devices.state.changed`` or ``devices.state.refused``.
    """
    try:
        with transaction.atomic():
            device = device_lock(device_id=device_id)
            return state_write_locked(
                device=device, level=level, actor=actor, reason=reason, **content
            )
    except DeviceReleased:
        with transaction.atomic():
            audit_event_record(
                actor=actor,
                action=DevicesAction.STATE_REFUSED,
                target=Device.objects.get(pk=device_id),
                data={"level": level, "problem": "device_released"},
                reason=reason,
            )
        raise


def device_release(*, device_id: int, actor: Actor, reason: str) -> DeviceState:
    """Set the phone free: the ``released`` state, pushed until the phone acknowledges it.

    The phone is marked released when it acks that state (``device_ack``);
    from then on no state can be written for it. Emits
    ``devices.state.changed`` (level ``released``).
    """
    return device_state_set(
        device_id=device_id, level=DeviceState.Level.RELEASED, actor=actor, reason=reason
    )
