"""Offline unlock: the codes a phone verifies without a network, their delivery by SMS, the
support PIN, and what the phone reports of them (``apps.devices.offline`` holds the scheme)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.audit.services import audit_event_record, audit_events_record_select
from apps.core.actor import Actor
from apps.core.outbox import task_enqueue_on_commit
from apps.core.sql import array_literal
from apps.devices.errors import OfflineCodeStale, OfflineCodeUnknown
from apps.devices.events import DevicesAction
from apps.devices.locks import device_lock
from apps.devices.models import Device, DeviceEvent, OfflineToken
from apps.devices.offline import (
    group,
    paid_until_value,
    pin_secret,
    starting_code,
    token_make,
    token_secret,
)
from apps.devices.selectors import offline_code_digits, offline_codes_current
from apps.devices.sql import (
    DEVICE_TOKEN_COUNTS_SET,
    OFFLINE_CODE_AUDIT_ROWS,
    OFFLINE_CODES_INSERT,
)
from apps.integrations.sms.base import get_sms_gateway
from apps.lenders.messages import message_render
from apps.lenders.models import Lender, MessageTemplate
from apps.lenders.selectors import lender_local_date, restriction_steps_applicable

logger = logging.getLogger(__name__)

DELIVER_TASK = "devices.offline_codes_deliver"


def offline_terms(*, device: Device, lender: Lender) -> dict[str, Any]:
    """What the enroll answer gives the phone once, for offline unlock (docs/devices.md): its
    token and PIN secrets, the token scheme's starting code, the epoch token values count
    from, and the loan's grace days and ladder, by which the phone derives a level from a
    paid-until date. ``device.token_epoch`` must be set."""
    loan = device.loan  # attribute access: no import of the loan's app, which sits above
    steps = restriction_steps_applicable(lender=lender, policy_version_ids={loan.policy_version_id})
    secret = token_secret(lender_slug=lender.slug, device_id=device.pk)
    return {
        "token_secret": secret,
        "starting_code": starting_code(secret),
        "epoch": device.token_epoch.isoformat() if device.token_epoch else None,
        "grace_days": loan.grace_days,
        "ladder": [[s.days_overdue, s.action] for s in steps[loan.policy_version_id]],
        "timezone": lender.timezone,
        "pin_secret": pin_secret(lender_slug=lender.slug, device_id=device.pk),
    }


def offline_epoch(*, device: Device, lender: Lender) -> date:
    """The epoch of a phone enrolling now: its loan's start date (no due date comes before
    it, so every paid-until date is a value of the scheme), or the lender's local date for a
    loan without one."""
    start: date | None = device.loan.start_date
    return (
        min(start, lender_local_date(lender=lender)) if start else lender_local_date(lender=lender)
    )


@dataclass(frozen=True, slots=True)
class CodeIssue:
    """A code to give one phone: ``paid_until`` for ``set_time``, none for ``disable_payg``."""

    device_id: int
    kind: str
    paid_until: date | None = None


def offline_codes_issue(
    *, issues: list[CodeIssue], actor: Actor, cause: str, before_state: bool = False
) -> list[int]:
    """Give each phone its next unlock code, after its new state is written (the code stands
    for that state: once the phone acks it, no SMS is needed); returns the codes' ids.

    In the caller's transaction, set-based: one lock of the devices in id order (the caller
    holds their loans: the global order), one insert of the codes, one update of the
    devices' counts, one audit append per lender. A phone that never received offline terms
    (enrolled before they existed: no epoch), or is not enrolled, gets none. The code's SMS
    falls due after ``OFFLINE_CODE_SMS_AFTER_SECONDS``, or at once for a phone not seen for
    ``DEVICE_OFFLINE_AFTER_MINUTES``; an earlier code still waiting is not sent any more (the
    new one supersedes it). With ``before_state``, the caller writes the state the codes stand
    for next and then calls ``offline_codes_bind_state``, which records their issue. Emits
    ``devices.offline_code.issued`` (never the digits)."""
    if not issues:
        return []
    if len({i.device_id for i in issues}) != len(issues):
        raise ValueError("one code per device")
    now = timezone.now()
    wanted = {i.device_id: i for i in issues}
    devices = list(
        Device.objects.select_for_update(of=("self",))
        .filter(pk__in=wanted, status=Device.Status.ENROLLED, token_epoch__isnull=False)
        .order_by("pk")
        .only("lender_id", "token_epoch", "token_count", "desired_version", "last_seen_at")
    )
    if not devices:
        return []
    slugs = dict(
        Lender.objects.filter(pk__in={d.lender_id for d in devices}).values_list("pk", "slug")
    )
    away_before = now - timedelta(minutes=settings.DEVICE_OFFLINE_AFTER_MINUTES)
    later = now + timedelta(seconds=settings.OFFLINE_CODE_SMS_AFTER_SECONDS)
    values: list[int | None] = []
    due: list[datetime] = []
    for device in devices:
        issue = wanted[device.pk]
        value = None
        if issue.kind == OfflineToken.Kind.SET_TIME:
            if issue.paid_until is None or device.token_epoch is None:
                raise ValueError("a set_time code needs its paid-until date")
            value = paid_until_value(epoch=device.token_epoch, paid_until=issue.paid_until)
        device.token_count = token_make(
            secret=token_secret(lender_slug=slugs[device.lender_id], device_id=device.pk),
            count=device.token_count,
            kind=issue.kind,
            value=value,
        ).count
        values.append(value)
        away = device.last_seen_at is None or device.last_seen_at < away_before
        due.append(now if away else later)
    ids = [d.pk for d in devices]
    OfflineToken.objects.filter(device_id__in=ids, delivery=OfflineToken.Delivery.WAITING).update(
        delivery=OfflineToken.Delivery.NOT_NEEDED, updated_at=now
    )
    with connection.cursor() as cursor:
        cursor.execute(
            OFFLINE_CODES_INSERT,
            {
                "cause": cause[:200],
                "now": now,
                "lenders": [d.lender_id for d in devices],
                "devices": array_literal(ids),
                "counts": [d.token_count for d in devices],
                "kinds": [wanted[d.pk].kind for d in devices],
                "values": values,
                "paid_until": [wanted[d.pk].paid_until for d in devices],
                "versions": [d.desired_version for d in devices],
                "due": due,
            },
        )
        issued = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            DEVICE_TOKEN_COUNTS_SET, [now, array_literal(ids), [d.token_count for d in devices]]
        )
    if not before_state:
        _codes_audit(code_ids=issued, actor=actor, cause=cause)
    # delivered when the first SMS falls due; beat runs the delivery every minute as well
    due_in = min(max((at - now).total_seconds(), 0) for at in due)
    task_enqueue_on_commit(DELIVER_TASK, countdown=int(due_in))
    return issued


def offline_codes_bind_state(*, code_ids: list[int], actor: Actor, cause: str) -> int:
    """Tie codes issued before their state was written (``offline_codes_issue`` with
    ``before_state``: so that the state carries their count) to that state, then record their
    issue. In the caller's transaction, which holds the devices' locks. Returns how many.
    Emits ``devices.offline_code.issued`` (never the digits)."""
    if not code_ids:
        return 0
    newest = Device.objects.filter(pk=OuterRef("device_id")).values("desired_version")[:1]
    bound = OfflineToken.objects.filter(pk__in=code_ids).update(state_version=Subquery(newest))
    _codes_audit(code_ids=code_ids, actor=actor, cause=cause)
    return bound


def _codes_audit(*, code_ids: list[int], actor: Actor, cause: str) -> None:
    """One ``devices.offline_code.issued`` event per code, built in SQL, on each code's
    lender's chain."""
    by_lender: dict[int, list[int]] = {}
    for code_id, lender_id in (
        OfflineToken.objects.filter(pk__in=code_ids).order_by("pk").values_list("pk", "lender_id")
    ):
        by_lender.setdefault(lender_id, []).append(code_id)
    for lender_id, ids in by_lender.items():
        audit_events_record_select(
            lender_id=lender_id,
            actor=actor,
            action=DevicesAction.OFFLINE_CODE_ISSUED,
            target_type=Device._meta.label_lower,
            reason=cause,
            rows=OFFLINE_CODE_AUDIT_ROWS.as_string(),
            params={"ids": array_literal(ids)},
        )


# a code claimed for sending is not claimed again before this, and an SMS that failed is
# tried again after a minute, up to SMS_ATTEMPTS times
SENDING_CLAIM = timedelta(minutes=5)
SMS_ATTEMPTS = 5


def offline_codes_deliver(*, batch: int = 200) -> dict[str, int]:
    """Send by SMS the codes whose time came while they are current and their phone has not
    acknowledged the state they stand for (or an agent sent them again); mark the others not
    needed (``offline_codes_current``: a newer code, or a state of another level since).

    Three short steps, so no lock is held while the SMS provider answers: claim the due
    rows (``FOR UPDATE SKIP LOCKED``: workers share the work) and move their due time past
    ``SENDING_CLAIM``; send with no transaction open; record each outcome on a row still
    waiting. A failed SMS is tried again a minute later, and marked failed after
    ``SMS_ATTEMPTS``. Safe to run again. Returns counts by outcome.

    Audit: none, the code's row records its delivery (its issue was audited).
    """
    now = timezone.now()
    done = {"sms": 0, "not_needed": 0, "failed": 0}
    with transaction.atomic():
        due = list(
            OfflineToken.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("device__loan__customer", "device__lender")
            .filter(delivery=OfflineToken.Delivery.WAITING, sms_due_at__lte=now)
            .order_by("sms_due_at", "id")[:batch]
        )
        current = set(
            offline_codes_current(
                OfflineToken.objects.filter(pk__in=[c.pk for c in due])
            ).values_list("pk", flat=True)
        )
        claimed = []
        for code in due:
            taken = code.device.acked_version >= code.state_version and code.resent_at is None
            if code.pk not in current or taken:
                code.delivery = OfflineToken.Delivery.NOT_NEEDED
                done["not_needed"] += 1
            else:
                code.sms_due_at = code.sending_until = now + SENDING_CLAIM
                code.sms_attempts += 1
                claimed.append(code)
        OfflineToken.objects.bulk_update(
            due, ["delivery", "sms_due_at", "sms_attempts", "sending_until", "updated_at"]
        )
    for code in claimed:
        ref = _send(code)
        sent = {"delivery": OfflineToken.Delivery.SMS, "sms_sent_at": timezone.now()}
        if ref is None and code.sms_attempts >= SMS_ATTEMPTS:
            sent = {"delivery": OfflineToken.Delivery.FAILED}
        elif ref is None:
            sent = {"sms_due_at": timezone.now() + timedelta(minutes=1)}
        OfflineToken.objects.filter(pk=code.pk, delivery=OfflineToken.Delivery.WAITING).update(
            **sent, sms_ref=ref or "", sending_until=None, updated_at=timezone.now()
        )
        done["sms" if ref is not None else "failed"] += 1
    return done


def _send(code: OfflineToken) -> str | None:
    """The SMS carrying ``code`` to its loan's customer: the provider's reference, or None
    when the provider failed (logged without the number or the digits)."""
    customer = code.device.loan.customer
    releases = code.kind == OfflineToken.Kind.DISABLE_PAYG
    body = message_render(
        lender=code.device.lender,
        kind=MessageTemplate.Kind.OFFLINE_RELEASE
        if releases
        else MessageTemplate.Kind.OFFLINE_UNLOCK,
        language=customer.locale,
        values={"code": group(offline_code_digits(code=code))},
    )
    try:
        return str(get_sms_gateway().send(to=customer.phone, body=body))
    except Exception as exc:  # the provider failed: tried again a minute later
        logger.warning("offline code sms failed code=%s error=%s", code.pk, type(exc).__name__)
        return None


@transaction.atomic
def offline_code_resend(
    *, device_id: int, lender_id: int, actor: Actor, reason: str
) -> OfflineToken:
    """Send the phone's newest unlock code again by SMS, now.

    Locks the device, then the code. Only while that code is current (``offline_codes_current``): once a
    state of another level was written (a reversal, a sweep), the code would give what the
    books no longer do, and the next payment brings a new one (``OfflineCodeStale``). Emits
    ``devices.offline_code.resent``. A code whose SMS is being sent at that moment is not
    sent a second time alongside it."""
    device = device_lock(device_id=device_id)
    if device.lender_id != lender_id:
        raise OfflineCodeUnknown()
    # the code's row locked too: a delivery claiming it is waited for, then seen
    code = OfflineToken.objects.select_for_update().filter(device=device).order_by("-count").first()
    if code is None:
        raise OfflineCodeUnknown()
    if not offline_codes_current(OfflineToken.objects.filter(pk=code.pk)).exists():
        raise OfflineCodeStale()
    now = timezone.now()
    code.resent_at = now
    if code.sending_until and code.sending_until > now:
        # its SMS is going out at this moment: that one is the SMS asked for
        code.save(update_fields=["resent_at", "updated_at"])
    else:
        code.delivery, code.sms_due_at = OfflineToken.Delivery.WAITING, now
        code.sms_attempts = 0
        code.save(
            update_fields=["delivery", "sms_due_at", "resent_at", "sms_attempts", "updated_at"]
        )
    audit_event_record(
        actor=actor,
        action=DevicesAction.OFFLINE_CODE_RESENT,
        target=device,
        reason=reason,
        data={"code_id": code.pk, "count": code.count},
    )
    task_enqueue_on_commit(DELIVER_TASK)
    return code


def offline_report_apply(*, device: Device, event: DeviceEvent) -> dict[str, Any]:
    """What a phone's report of something it did offline changes here (the caller stored the
    event and holds the device lock): a code it applied is marked applied. Returns what the
    event's audit record adds.

    Audit: none of its own, the caller's ``devices.device.event_reported`` records it.
    """
    if event.kind != DeviceEvent.Kind.OFFLINE_TOKEN_APPLIED:
        return {}
    count = event.detail.get("count")
    if not isinstance(count, int):
        return {"problem": "no_count"}
    applied = OfflineToken.objects.filter(
        device=device, count=count, applied_at__isnull=True
    ).update(applied_at=event.occurred_at, updated_at=timezone.now())
    known = applied or OfflineToken.objects.filter(device=device, count=count).exists()
    return {} if known else {"problem": "unknown_code"}
