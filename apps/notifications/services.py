"""Queue messages held to each country's contact rules; send them through the phone or SMS.

What a message says and when it is due is decided above this app (the loan's reminders,
receipts and notices: ``apps.collections.services``); this app delivers the drafts it is
given. The phone is reached through the channel ``apps.devices`` installs
(``apps.notifications.channels``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.audit.services import audit_event_record
from apps.core.actor import Actor, ActorType
from apps.core.outbox import task_enqueue_on_commit
from apps.customers.selectors import customer_by_phone
from apps.integrations.messaging.base import (
    RANK,
    Delivery,
    DeliveryUpdate,
    InboundText,
    MessagingAdapter,
    Outbound,
    SendRefused,
)
from apps.integrations.messaging.registry import (
    ROUTES,
    messaging_adapter_for,
    messaging_callback_url,
)
from apps.integrations.sms.base import get_sms_gateway
from apps.integrations.voice.registry import VoiceAccount, voice_account_for, voice_callback_url
from apps.integrations.voice.twilio_voice import script_twiml
from apps.lenders.models import Lender
from apps.notifications.channels import phone_channel
from apps.notifications.events import NotificationsAction
from apps.notifications.models import ContactOptOut, Notification, VoiceCall
from apps.notifications.rules import contact_slot, weekly_limit
from apps.notifications.sql import DELIVERY_FORWARD, QUEUE, SENT, SENT_COLUMNS

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
    # the channel to try before the lender's order (an answer to a text: the one it came on)
    first_channel: str = ""


def _contacts_since(customer_ids: set[int], since: datetime) -> dict[int, int]:
    """customer id -> the reminders counted in their weekly limit since ``since``: every
    message but the transactional and the suppressed, and every voice call but the
    suppressed, whatever its channel."""
    if not customer_ids:
        return {}
    counts: dict[int, int] = dict(
        Notification.objects.filter(customer_id__in=customer_ids, created_at__gte=since)
        .exclude(kind__in=Notification.TRANSACTIONAL)
        .exclude(status=S.SUPPRESSED)
        .order_by()
        .values_list("customer_id")
        .annotate(n=Count("id"))
    )
    calls = (
        VoiceCall.objects.filter(customer_id__in=customer_ids, created_at__gte=since)
        .exclude(status=VoiceCall.Status.SUPPRESSED)
        .order_by()
        .values_list("customer_id")
        .annotate(n=Count("id"))
    )
    for customer_id, n in calls:
        counts[customer_id] = counts.get(customer_id, 0) + n
    return counts


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
    counts = _contacts_since(limited, week)
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
                "firsts": [d.first_channel for d in drafts],
            },
        )
        return len(cursor.fetchall())


C = Notification.Channel
R = Notification.Delivery
TEXT_STATUS: dict[str, str] = {C.SMS: S.SMS, C.WHATSAPP: S.WHATSAPP}
# a status the provider reports for a text: held by the provider (a fallback may follow)
WAITING = (R.QUEUED, R.SENT)
# what the product's own SMS gateway (SMS_GATEWAY_CLASS) is called where a lender has no SMS
# account: it reports no delivery, so what it takes is never fallen back from
GATEWAY = "gateway"
DISPATCH_TASK = "notifications.notifications_dispatch"
K = Notification.Kind
# reminders a customer may stop (STOP), a funds alert's link among them; the lock notice and
# receipts are owed to them
STOPPABLE = frozenset({K.DUE_SOON, K.DUE_TODAY, K.OVERDUE, K.FUNDS})
# a text that is the whole message, case, spaces and punctuation aside: Twilio's and
# carriers' standard words, and the product's languages' own
OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "baja", "alto", "退订"}
)
OPT_IN_WORDS = frozenset({"start", "unstop", "alta", "订阅"})


class _Texts:
    """The lenders' text adapters of one run, each built once (None: no account for it)."""

    def __init__(self) -> None:
        self._built: dict[tuple[int, str], MessagingAdapter | None] = {}
        self._opted_out: set[tuple[int, str, str]] = set()

    def load_opt_outs(self, notifications: list[Notification]) -> None:
        """The opt-outs of the numbers ``notifications`` go to (one query)."""
        phones = {n.customer.phone for n in notifications if n.kind in STOPPABLE}
        if phones:
            self._opted_out |= set(
                ContactOptOut.objects.filter(
                    lender_id__in={n.lender_id for n in notifications}, phone__in=phones
                ).values_list("lender_id", "phone", "channel")
            )

    def opted_out(self, notification: Notification, channel: str) -> bool:
        """Whether the customer stopped this kind of message on ``channel``."""
        key = (notification.lender_id, notification.customer.phone, channel)
        return notification.kind in STOPPABLE and key in self._opted_out

    def adapter(self, lender_id: int, channel: str) -> MessagingAdapter | None:
        key = (lender_id, channel)
        if key not in self._built:
            self._built[key] = messaging_adapter_for(lender_id=lender_id, channel=channel)
        return self._built[key]

    def available(self, lender_id: int, channel: str) -> bool:
        # SMS always: without an account of its own a lender uses the product's gateway
        return channel == C.SMS or self.adapter(lender_id, channel) is not None


def _channel_order(notification: Notification) -> list[str]:
    """The channels ``notification`` tries, in order: the lender's, with the notification's
    first channel (an answer goes back on the channel the customer wrote on) ahead of them."""
    order = list(notification.lender.message_channels)
    first = notification.first_channel
    return [first, *(c for c in order if c != first)] if first else order


def _channels_after(order: list[str], channel: str) -> list[str]:
    """The channels of ``order`` that come after ``channel`` (all of them after "")."""
    if not channel:
        return list(order)
    if channel in order:
        return order[order.index(channel) + 1 :]
    return [c for c in order if c != channel]


def _send_text(notification: Notification, channel: str, texts: _Texts, now: datetime) -> str:
    """Hand ``notification`` to the lender's provider for ``channel``: "sent", "retry" (the
    provider is down or limits us: the next run tries again) or "refused" (it will never
    take it on this channel: an invalid number, an opted-out recipient)."""
    adapter = texts.adapter(notification.lender_id, channel)
    provider, reported, error = GATEWAY, "", ""
    body = _with_opt_out_hint(notification)
    try:
        if adapter is None:
            ref = get_sms_gateway().send(to=notification.customer.phone, body=body)
        else:
            provider = adapter.provider
            sent = adapter.send(
                Outbound(
                    to=notification.customer.phone,
                    text=body,
                    status_url=_status_url(provider, notification.lender.slug),
                    language=notification.locale,
                )
            )
            ref, reported, error = sent.provider_ref, str(sent.delivery), sent.error
    except SendRefused as exc:
        logger.warning(
            "text not taken notification=%s channel=%s error=%s", notification.pk, channel, exc
        )
        notification.error = exc.code[:100]
        return "retry" if exc.retryable else "refused"
    except Exception as exc:  # the product's gateway failed: logged, retried by the next run
        logger.warning("sms failed notification=%s error=%s", notification.pk, type(exc).__name__)
        notification.error = type(exc).__name__[:100]
        return "retry"
    if reported == R.FAILED:
        notification.error = error[:100] or "failed"
        return "refused"
    notification.channel, notification.status = channel, TEXT_STATUS[channel]
    notification.sent_at, notification.provider, notification.provider_ref = now, provider, ref
    notification.delivery, notification.error = reported, error[:100]
    notification.delivered_at = now if reported == R.DELIVERED else None
    return "sent"


def _status_url(provider: str, lender_slug: str) -> str:
    """Where the provider reports this message's delivery, when it is told per message
    (Twilio); "" where the account's dashboard sets it once (Africa's Talking, WhatsApp)."""
    if "delivery" not in ROUTES.get(provider, ()):
        return ""
    return messaging_callback_url(provider=provider, lender_slug=lender_slug, route="delivery")


def _deliver(
    notification: Notification,
    *,
    after: str,
    now: datetime,
    texts: _Texts,
    pushable: dict[int, int],
    to_push: list[Notification],
) -> str:
    """Send ``notification`` on the first of its channels (``_channel_order``: the lender's,
    an answer's own first) after ``after`` that can take it (the phone, when it can be
    pushed; a text channel the lender has an account for, and SMS always). A text refused
    for good (an invalid number) falls back to the next channel, once. Returns what became of it: a channel, "retry" or "failed"; the
    caller saves it (pushes: the caller pushes ``to_push`` together)."""
    stopped = False
    for channel in _channels_after(_channel_order(notification), after):
        if channel == C.PUSH:
            if notification.loan_id in pushable:
                notification.channel, notification.status, notification.pushed_at = (
                    C.PUSH,
                    S.PUSHED,
                    now,
                )
                to_push.append(notification)
                return C.PUSH
            continue
        if not texts.available(notification.lender_id, channel):
            continue
        if texts.opted_out(notification, channel):
            stopped = True
            continue
        outcome = _send_text(notification, channel, texts, now)
        if outcome != "refused":
            return channel if outcome == "sent" else outcome
        if notification.fell_back_from:
            break  # its one fallback is spent
        notification.fell_back_from = channel
    if stopped and not notification.error:  # every channel left is one it opted out of
        notification.status = S.OPTED_OUT
        return "opted_out"
    notification.status = S.FAILED
    notification.error = notification.error or "no_channel"
    return "failed"


def notifications_dispatch(*, batch: int = 500) -> dict[str, int]:
    """Send what is due, each on the first of its lender's channels that can take it (the
    phone's agent, WhatsApp, SMS, in the lender's order), inside contact hours; and fall
    back to the next channel, once, for what was not delivered in time: a notice the phone
    has not acknowledged within ``NOTICE_ACK_MINUTES``, a text its provider has not
    reported delivered within ``TEXT_DELIVERY_MINUTES``.

    Claims rows with ``FOR UPDATE SKIP LOCKED``, so several workers share the work; safe
    to run again. Returns counts by outcome.

    Audit: none, delivery moves the Notification row's status and times, its own record.
    """
    return _dispatch(batch=batch, texts=_Texts())[0]


def notifications_dispatch_for(*, seconds: float, batch: int = 500) -> dict[str, int]:
    """``notifications_dispatch`` again and again while it finds a full batch due, for at
    most ``seconds`` (a backlog: a morning's reminders, a worker back from an outage);
    each lender's provider account is opened once. Returns the counts summed, and
    ``more``: 1 when it stopped with messages still due.

    Audit: none, as ``notifications_dispatch``: each row records its own delivery.
    """
    deadline = time.monotonic() + seconds
    texts = _Texts()
    total: dict[str, int] = {}
    while True:
        counts, claimed = _dispatch(batch=batch, texts=texts)
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
        more = claimed == batch
        if not more or time.monotonic() >= deadline:
            total["more"] = int(more)
            return total


def _dispatch(*, batch: int, texts: _Texts) -> tuple[dict[str, int], int]:
    now = timezone.now()
    sent = {"pushed": 0, "whatsapp": 0, "sms": 0, "fallback": 0, "opted_out": 0, "failed": 0}
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
            if _may_contact(notification, now):
                due.append(notification)
            else:
                notification.scheduled_for = _slot(notification, now)
                later.append(notification)
        Notification.objects.bulk_update(later, ["scheduled_for", "updated_at"])
        pushable = phone_channel().pushable(loan_ids={n.loan_id for n in due})
        texts.load_opt_outs(due)
        to_push: list[Notification] = []
        for notification in due:
            outcome = _deliver(
                notification,
                after=notification.fell_back_from,
                now=now,
                texts=texts,
                pushable=pushable,
                to_push=to_push,
            )
            outcome = "pushed" if outcome == C.PUSH else outcome
            if outcome in sent:
                sent[outcome] += 1
        _save_sent(due, sorted({pushable[n.loan_id] for n in to_push}))
    for overdue in (_pushes_unacknowledged, _texts_undelivered):
        with transaction.atomic():
            late = [n for n in overdue(now=now, batch=batch) if _may_contact(n, now)]
            texts.load_opt_outs(late)
            for notification in late:
                was = (notification.channel, notification.status)
                notification.fell_back_from = notification.channel
                outcome = _deliver(
                    notification,
                    after=notification.channel,
                    now=now,
                    texts=texts,
                    pushable={},
                    to_push=[],
                )
                if outcome == "retry":  # the next run tries again
                    notification.fell_back_from = ""
                elif outcome in ("failed", "opted_out"):
                    # nothing to fall back to: it stays where it is (a notice may still be
                    # acknowledged, a text still delivered), its fallback spent
                    notification.channel, notification.status = was
                else:
                    sent["fallback"] += 1
            _save_sent(late, [])
    return sent, len(claimed)


def _pushes_unacknowledged(*, now: datetime, batch: int) -> list[Notification]:
    """Notices pushed to the phone and not acknowledged in time, locked."""
    cutoff = now - timedelta(minutes=settings.NOTICE_ACK_MINUTES)
    return list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer", "lender")
        .filter(status=S.PUSHED, pushed_at__lt=cutoff, fell_back_from="")
        .order_by("pushed_at", "id")[:batch]
    )


def _texts_undelivered(*, now: datetime, batch: int) -> list[Notification]:
    """Texts whose provider has not reported them delivered in time and that have not
    fallen back yet, locked (found by ``notification_undelivered``)."""
    cutoff = now - timedelta(minutes=settings.TEXT_DELIVERY_MINUTES)
    return list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer", "lender")
        .filter(
            status__in=list(TEXT_STATUS.values()),
            delivery__in=WAITING,
            sent_at__lt=cutoff,
            fell_back_from="",
        )
        .order_by("sent_at", "id")[:batch]
    )


def _may_contact(notification: Notification, now: datetime) -> bool:
    return notification.kind in Notification.TRANSACTIONAL or _slot(notification, now) == now


def _slot(notification: Notification, now: datetime) -> datetime:
    lender = notification.lender
    return contact_slot(country=lender.country, tz=lender.timezone, at=now)


def _save_sent(notifications: list[Notification], device_ids: list[int]) -> None:
    """Save what ``_deliver`` made of ``notifications`` (one statement: ``sql.SENT``) and
    nudge the phones pushed."""
    if notifications:
        columns = {name: [getattr(n, name) for n in notifications] for name in SENT_COLUMNS}
        with connection.cursor() as cursor:
            cursor.execute(
                SENT,
                {
                    "now": timezone.now(),
                    "ids": [n.pk for n in notifications],
                    "statuses": columns["status"],
                    "channels": columns["channel"],
                    "fell_back_from": columns["fell_back_from"],
                    "pushed_at": columns["pushed_at"],
                    "sent_at": columns["sent_at"],
                    "providers": columns["provider"],
                    "provider_refs": columns["provider_ref"],
                    "deliveries": columns["delivery"],
                    "delivered_at": columns["delivered_at"],
                    "errors": [e[:100] for e in columns["error"]],
                },
            )
    if device_ids:
        phone_channel().nudge(device_ids=device_ids)


@transaction.atomic
def notices_ack(*, loan_id: int, ids: list[int]) -> int:
    """The phone showed these notices. Only the loan's own notices; repeating is harmless.

    Audit: none, the row's ``acked_at`` is the acknowledgement's record (the sweep reads it).
    """
    return Notification.objects.filter(loan_id=loan_id, pk__in=ids, status=S.PUSHED).update(
        status=S.ACKED, acked_at=timezone.now(), updated_at=timezone.now()
    )


def delivery_updates_apply(*, lender_id: int, updates: Sequence[DeliveryUpdate]) -> int:
    """Record what a provider reports of the lender's texts: each moves forward only
    (queued < sent < delivered or failed), so a report that arrives late or twice changes
    nothing; a report of a message the lender never sent is ignored. A text reported
    failed falls back to the lender's next channel, once: queued again at once, or for the
    next contact window (``notifications_dispatch`` sends it). Returns how many moved.

    Reports of progress are applied in one statement (``sql.DELIVERY_FORWARD``); failures
    under the rows' locks, since they may queue the message again.

    Audit: none, the Notification row records its delivery (status, times, the provider's
    id and error).
    """
    furthest: dict[tuple[str, str], DeliveryUpdate] = {}
    for update in updates:
        key = (update.provider, update.provider_ref)
        if key not in furthest or RANK[update.delivery] > RANK[furthest[key].delivery]:
            furthest[key] = update
    now = timezone.now()
    moved = 0
    progress = [u for u in furthest.values() if u.delivery != Delivery.FAILED]
    for provider in sorted({u.provider for u in progress}):
        mine = [u for u in progress if u.provider == provider]
        with connection.cursor() as cursor:
            cursor.execute(
                DELIVERY_FORWARD,
                {
                    "now": now,
                    "lender": lender_id,
                    "provider": provider,
                    "refs": [u.provider_ref for u in mine],
                    "deliveries": [str(u.delivery) for u in mine],
                    "ats": [u.at for u in mine],
                },
            )
            moved += len(cursor.fetchall())
    failures = [u for u in furthest.values() if u.delivery == Delivery.FAILED]
    if failures:
        moved += _failures_apply(lender_id=lender_id, failures=failures, now=now)
    return moved


@transaction.atomic
def _failures_apply(*, lender_id: int, failures: list[DeliveryUpdate], now: datetime) -> int:
    found = {
        (n.provider, n.provider_ref): n
        for n in Notification.objects.select_for_update(of=("self",))
        .select_related("lender")
        .filter(
            lender_id=lender_id,
            provider__in={u.provider for u in failures},
            provider_ref__in={u.provider_ref for u in failures},
        )
        .order_by("id")
    }
    moved: list[Notification] = []
    queued_again = False
    for update in failures:
        notification = found.get((update.provider, update.provider_ref))
        if notification is None or not notification.delivery:
            continue
        if RANK[update.delivery] <= RANK[notification.delivery]:
            continue  # behind what is recorded: after the end
        notification.delivery = R.FAILED
        notification.error = update.error[:100] or "failed"
        queued_again |= _fall_back_later(notification, now)
        moved.append(notification)
    Notification.objects.bulk_update(
        moved,
        ["delivery", "error", "status", "scheduled_for", "sent_at", "fell_back_from", "updated_at"],
    )
    if queued_again:
        task_enqueue_on_commit(DISPATCH_TASK)
    return len(moved)


def _fall_back_later(notification: Notification, now: datetime) -> bool:
    """A text its provider failed to deliver: queued again for the next channel (at once
    inside contact hours, else at the next window), unless its one fallback is spent.
    Returns whether it was queued again."""
    if notification.fell_back_from or not _channels_after(
        _channel_order(notification), notification.channel
    ):
        notification.status = S.FAILED
        return False
    notification.fell_back_from = notification.channel
    notification.status, notification.sent_at = S.SCHEDULED, None
    notification.scheduled_for = (
        now if notification.kind in Notification.TRANSACTIONAL else _slot(notification, now)
    )
    return True


def _with_opt_out_hint(notification: Notification) -> str:
    """The text as sent: a notice the law requires says how to stop the reminders."""
    if notification.kind in STOPPABLE or notification.kind in Notification.TRANSACTIONAL:
        return notification.body
    with translation.override(notification.locale):
        return f"{notification.body} {gettext('Reply STOP to stop reminders.')}"


def _keyword(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


def inbound_texts_apply(*, lender: Lender, texts: Sequence[InboundText]) -> list[InboundText]:
    """Apply the opt-outs and opt-ins among ``texts`` sent to ``lender``: a reply that is
    only a stop word (or the provider's own opt-out signal) stops reminders to that number
    on that channel at once; a start word lets them go again. Returns the other texts
    (questions for the two-way replies).

    Audit: ``notifications.contact.opted_out`` / ``opted_in`` (the channel, how, the
    number's last four digits), on the customer with that number when there is one.
    """
    rest: list[InboundText] = []
    for text in texts:
        word = _keyword(text.text)
        if text.opt_out or word in OPT_OUT_WORDS:
            contact_opt_out_set(lender=lender, text=text, stop=True)
        elif word in OPT_IN_WORDS:
            contact_opt_out_set(lender=lender, text=text, stop=False)
        else:
            rest.append(text)
    return rest


@transaction.atomic
def contact_opt_out_set(*, lender: Lender, text: InboundText, stop: bool) -> bool:
    """Stop (``stop``) or restart reminders to ``text``'s sender on its channel; returns
    whether anything changed (a repeated STOP changes nothing and is not audited again)."""
    found = ContactOptOut.objects.filter(
        lender=lender, phone=text.sender, channel=str(text.channel)
    )
    if stop:
        _, changed = ContactOptOut.objects.get_or_create(
            lender=lender,
            phone=text.sender,
            channel=str(text.channel),
            defaults={
                "source": "provider" if text.opt_out else "keyword",
                "provider": text.provider,
            },
        )
    else:
        changed = found.delete()[0] > 0
    if changed:
        customer = customer_by_phone(lender_id=lender.pk, phone=text.sender)
        audit_event_record(
            actor=Actor(type=ActorType.SYSTEM, id=f"provider:{text.provider}"),
            action=(
                NotificationsAction.CONTACT_OPTED_OUT
                if stop
                else NotificationsAction.CONTACT_OPTED_IN
            ),
            target=customer,
            lender_id=lender.pk,
            data={
                "channel": str(text.channel),
                "how": "provider" if text.opt_out else "keyword",
                "phone_last4": text.sender[-4:],
            },
        )
    return changed


# --- voice reminders -----------------------------------------------------------------

V = VoiceCall.Status
VOICE_RETRY_AFTER = timedelta(hours=1)  # a call not answered is tried again after this


@dataclass(frozen=True, slots=True)
class VoiceDraft:
    customer_id: int
    loan_id: int
    stage: str
    locale: str
    script: str
    dedupe_key: str


def voice_calls_queue(*, lender: Lender, drafts: list[VoiceDraft]) -> int:
    """Queue reminder calls in the caller's transaction; returns how many were new.

    Held, like a text, to the next moment inside the country's contact hours, and counted
    with every other reminder against the customer's weekly limit (over it: recorded as
    suppressed, never placed). A dedupe key already queued is skipped.

    Audit: none, the VoiceCall row is the call's own record (its status, times, key).
    """
    queued = set(
        VoiceCall.objects.filter(
            lender=lender, dedupe_key__in=[d.dedupe_key for d in drafts]
        ).values_list("dedupe_key", flat=True)
    )
    drafts = [d for d in drafts if d.dedupe_key not in queued]
    if not drafts:
        return 0
    now = timezone.now()
    counts = _contacts_since({d.customer_id for d in drafts}, now - timedelta(days=7))
    limit = weekly_limit(lender.country)
    slot = contact_slot(country=lender.country, tz=lender.timezone, at=now)
    calls = []
    for draft in drafts:
        over = counts.get(draft.customer_id, 0) >= limit
        if not over:
            counts[draft.customer_id] = counts.get(draft.customer_id, 0) + 1
        calls.append(
            VoiceCall(
                lender=lender,
                customer_id=draft.customer_id,
                loan_id=draft.loan_id,
                stage=draft.stage,
                locale=draft.locale,
                script=draft.script,
                dedupe_key=draft.dedupe_key,
                status=V.SUPPRESSED if over else V.SCHEDULED,
                scheduled_for=slot,
            )
        )
    # voice_call_once: a job run twice, or two at once, queues nothing twice
    VoiceCall.objects.bulk_create(calls, ignore_conflicts=True)
    return len(calls)


def _voice_menu(locale: str) -> tuple[str, str]:
    """The menu read after the script, and the goodbye, in the customer's language."""
    with translation.override(locale):
        return (
            gettext(
                "Press 1 to get a link to pay by SMS. Press 2 to promise to pay within 7 days. "
                "Press 9 to talk to an agent."
            ),
            gettext("Thank you. Goodbye."),
        )


def voice_calls_dispatch(*, batch: int = 100) -> dict[str, int]:
    """Place the calls that are due, inside contact hours (a call whose hour has gone waits
    for the next window), through each lender's voice account. A call the provider refuses
    for now (an outage, a rate limit) waits for the next run; for good (an invalid number,
    no account in use), it fails.

    Claims rows with ``FOR UPDATE SKIP LOCKED``; safe to run again. Returns counts.

    Audit: none, each call's row records what became of it.
    """
    now = timezone.now()
    done = {"placed": 0, "held": 0, "retry": 0, "failed": 0}
    accounts: dict[int, VoiceAccount | None] = {}
    with transaction.atomic():
        claimed = list(
            VoiceCall.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("customer", "lender")
            .filter(status=V.SCHEDULED, scheduled_for__lte=now)
            .order_by("scheduled_for", "id")[:batch]
        )
        for call in claimed:
            lender = call.lender
            slot = contact_slot(country=lender.country, tz=lender.timezone, at=now)
            if slot != now:
                call.scheduled_for = slot
                done["held"] += 1
                continue
            if call.lender_id not in accounts:
                accounts[call.lender_id] = voice_account_for(lender_id=call.lender_id)
            account = accounts[call.lender_id]
            if account is None:
                call.status, call.error = V.FAILED, "no_account"
                done["failed"] += 1
                continue
            menu, goodbye = _voice_menu(call.locale)
            url = partial(voice_callback_url, lender_slug=lender.slug, call_id=call.pk)
            twiml = script_twiml(
                script=call.script,
                menu=menu,
                language=call.locale,
                action=url(route="gather"),
                goodbye=goodbye,
            )
            try:
                sid = account.adapter.call(
                    to=call.customer.phone, twiml=twiml, status_url=url(route="status")
                )
            except SendRefused as exc:
                call.error = exc.code[:100]
                if exc.retryable:
                    done["retry"] += 1
                else:
                    call.status = V.FAILED
                    done["failed"] += 1
                continue
            call.status, call.attempts, call.called_at = V.CALLING, call.attempts + 1, now
            call.provider, call.provider_ref, call.error = "twilio_voice", sid, ""
            done["placed"] += 1
        VoiceCall.objects.bulk_update(
            claimed,
            [
                "status",
                "attempts",
                "called_at",
                "provider",
                "provider_ref",
                "error",
                "scheduled_for",
                "updated_at",
            ],
        )
    return done


@transaction.atomic
def voice_call_ended(*, lender_id: int, call_id: int, call_sid: str, answered: bool) -> str:
    """The provider reports call ``call_id`` ended: answered, or not (busy, no answer,
    failed), in which case it is tried once more after ``VOICE_RETRY_AFTER`` (inside
    contact hours), then left unanswered. A report for another call, or one repeated, changes
    nothing. Returns the call's status.

    Locks: the call.
    Audit: none, the row records the call's end (the key pressed is audited).
    """
    call = (
        VoiceCall.objects.select_for_update(of=("self",))
        .select_related("lender")
        .filter(pk=call_id, lender_id=lender_id, provider_ref=call_sid)
        .first()
    )
    if call is None:
        return ""
    if call.status != V.CALLING:
        return str(call.status)
    now = timezone.now()
    call.ended_at = now
    if answered:
        call.status = V.ANSWERED
    elif call.attempts < VoiceCall.MAX_ATTEMPTS:
        lender = call.lender
        call.status, call.provider_ref = V.SCHEDULED, ""
        call.scheduled_for = contact_slot(
            country=lender.country, tz=lender.timezone, at=now + VOICE_RETRY_AFTER
        )
    else:
        call.status = V.UNANSWERED
    call.save(update_fields=["status", "ended_at", "provider_ref", "scheduled_for", "updated_at"])
    return str(call.status)


@transaction.atomic
def voice_call_answer_record(
    *, lender_id: int, call_id: int, digit: str, answer: str, actor: Actor
) -> VoiceCall | None:
    """The customer pressed ``digit`` on call ``call_id`` (``answer``: what it asks). Once:
    a second key (or the provider posting the first again) finds it recorded and returns
    None, so what it asks is done once.

    Locks: the call. Emits ``notifications.voice_call.answered`` (the key and the answer).
    """
    call = (
        VoiceCall.objects.select_for_update(of=("self",))
        .filter(pk=call_id, lender_id=lender_id)
        .exclude(provider_ref="")
        .first()
    )
    if call is None or call.digit:
        return None
    call.digit, call.answer = digit[:1], answer
    if call.status == V.CALLING:
        call.status = V.ANSWERED
    call.save(update_fields=["digit", "answer", "status", "updated_at"])
    audit_event_record(
        actor=actor,
        action=NotificationsAction.VOICE_CALL_ANSWERED,
        target=call,
        data={"digit": call.digit, "answer": answer, "stage": call.stage},
    )
    return call
