"""Queue messages held to each country's contact rules; send them through the phone or SMS.

What a message says and when it is due is decided above this app (the loan's reminders,
receipts and notices: ``apps.collections.services``); this app delivers the drafts it is
given. The phone is reached through the channel ``apps.devices`` installs
(``apps.notifications.channels``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from apps.integrations.sms.base import get_sms_gateway
from apps.lenders.models import Lender
from apps.notifications.channels import phone_channel
from apps.notifications.models import Notification
from apps.notifications.rules import contact_slot, weekly_limit
from apps.notifications.sql import QUEUE

logger = logging.getLogger(__name__)

S = Notification.Status


@dataclass(frozen=True, slots=True)
class Draft:
    customer_id: int
    loan_id: int
    kind: str
    locale: str
    body: str
    dedupe_key: str
    # a notice of a stage that blocks apps or locks, and the date it names (models.py)
    announces_stage: str = ""
    announces_on: date | None = None


def notifications_queue(*, lender: Lender, drafts: list[Draft]) -> int:
    """Queue ``drafts`` in the caller's transaction, in one statement; returns how many were new.

    Each is held to the next moment inside the country's contact hours
    (transactional messages go at once) and counted against the customer's
    weekly limit (over it: logged as suppressed, never sent). A dedupe key
    already queued is skipped, so a job that runs twice queues nothing twice.

    Audit: none, the Notification row is the message's own record (its status and times).
    """
    if not drafts:
        return 0
    now = timezone.now()
    week = now - timedelta(days=7)
    limited = {d.customer_id for d in drafts if d.kind not in Notification.TRANSACTIONAL}
    counts = (
        dict(
            Notification.objects.filter(customer_id__in=limited, created_at__gte=week)
            .exclude(kind__in=Notification.TRANSACTIONAL)
            .exclude(status=S.SUPPRESSED)
            .order_by()
            .values_list("customer_id")
            .annotate(n=Count("id"))
        )
        if limited
        else {}
    )
    limit, slot = (
        weekly_limit(lender.country),
        contact_slot(country=lender.country, tz=lender.timezone, at=now),
    )
    statuses, ats = [], []
    for draft in drafts:
        transactional = draft.kind in Notification.TRANSACTIONAL
        over = not transactional and counts.get(draft.customer_id, 0) >= limit
        if not transactional and not over:
            counts[draft.customer_id] = counts.get(draft.customer_id, 0) + 1
        statuses.append(S.SUPPRESSED if over else S.SCHEDULED)
        ats.append(now if transactional else slot)
    with connection.cursor() as cursor:
        cursor.execute(
            QUEUE,
            {
                "lender": lender.pk,
                "now": now,
                "customers": [d.customer_id for d in drafts],
                "loans": [d.loan_id for d in drafts],
                "kinds": [d.kind for d in drafts],
                "statuses": statuses,
                "locales": [d.locale for d in drafts],
                "bodies": [d.body for d in drafts],
                "dedupes": [d.dedupe_key for d in drafts],
                "ats": ats,
                "announces": [d.announces_stage for d in drafts],
                "announces_on": [d.announces_on for d in drafts],
            },
        )
        return len(cursor.fetchall())


def _send_sms(notification: Notification) -> None:
    try:
        ref = get_sms_gateway().send(to=notification.customer.phone, body=notification.body)
    except Exception as exc:  # the provider failed: logged, retried by the next run
        logger.warning("sms failed notification=%s error=%s", notification.pk, type(exc).__name__)
        notification.error = type(exc).__name__[:100]
        notification.save(update_fields=["error", "updated_at"])
        return
    notification.status, notification.sms_sent_at, notification.provider_ref = (
        S.SMS,
        timezone.now(),
        ref,
    )
    notification.save(update_fields=["status", "sms_sent_at", "provider_ref", "updated_at"])


def notifications_dispatch(*, batch: int = 500) -> dict[str, int]:
    """Send what is due: through the phone when it can be pushed, else by SMS; and by SMS
    what the phone has not acknowledged within ``NOTICE_ACK_MINUTES``, inside contact hours.

    Claims rows with ``FOR UPDATE SKIP LOCKED``, so several workers share the
    work; safe to run again. Returns counts by outcome.

    Audit: none, delivery moves the Notification row's status and times, its own record.
    """
    now = timezone.now()
    sent = {"pushed": 0, "sms": 0, "fallback": 0}
    with transaction.atomic():
        claimed = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer", "lender")
            .filter(status=S.SCHEDULED, scheduled_for__lte=now)
            .order_by("scheduled_for", "id")[:batch]
        )
        # held until its hour came, it may have come and gone (a backlog, a worker down):
        # outside contact hours it waits for the next window again
        due, later = [], []
        for notification in claimed:
            lender = notification.lender
            slot = contact_slot(country=lender.country, tz=lender.timezone, at=now)
            if notification.kind in Notification.TRANSACTIONAL or slot == now:
                due.append(notification)
            else:
                notification.scheduled_for = slot
                later.append(notification)
        Notification.objects.bulk_update(later, ["scheduled_for", "updated_at"])
        phone = phone_channel()
        pushable = phone.pushable(loan_ids={n.loan_id for n in due})
        to_push = [n for n in due if n.loan_id in pushable]
        for notification in to_push:
            notification.status, notification.pushed_at = S.PUSHED, now
        Notification.objects.bulk_update(to_push, ["status", "pushed_at", "updated_at"])
        phone.nudge(device_ids=sorted({pushable[n.loan_id] for n in to_push}))
        sent["pushed"] = len(to_push)
        for notification in due:
            if notification.loan_id not in pushable:
                _send_sms(notification)
                sent["sms"] += 1
    cutoff = now - timedelta(minutes=settings.NOTICE_ACK_MINUTES)
    with transaction.atomic():
        late = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer", "lender")
            .filter(status=S.PUSHED, pushed_at__lt=cutoff)
            .order_by("pushed_at", "id")[:batch]
        )
        for notification in late:
            lender = notification.lender
            transactional = notification.kind in Notification.TRANSACTIONAL
            if (
                transactional
                or contact_slot(country=lender.country, tz=lender.timezone, at=now) == now
            ):
                _send_sms(notification)
                sent["fallback"] += 1
    return sent


@transaction.atomic
def notices_ack(*, loan_id: int, ids: list[int]) -> int:
    """The phone showed these notices. Only the loan's own notices; repeating is harmless.

    Audit: none, the row's ``acked_at`` is the acknowledgement's record (the sweep reads it).
    """
    return Notification.objects.filter(loan_id=loan_id, pk__in=ids, status=S.PUSHED).update(
        status=S.ACKED, acked_at=timezone.now(), updated_at=timezone.now()
    )
