"""The push outbox and its relay: nudges written with their state, sent after commit.

A nudge is a row in ``PushNudge``, inserted in the transaction that writes
the desired state. The relay claims due rows in batches of at most 500
(``FOR UPDATE SKIP LOCKED``, so relays on several workers share the work),
sends one message per phone (the newest version; older nudges of the same
phone in the batch are superseded) through the push gateway outside any
transaction, and records each outcome with one statement per batch:

* sent: the provider's message id;
* retry (quota, unavailable): back to pending, due after an exponential
  backoff with full jitter (or the provider's Retry-After when longer), until
  ``PUSH_MAX_ATTEMPTS``, then failed;
* dead (the token is unregistered): the phone's push address is marked dead,
  unless it has reported a new one meanwhile, which sends it to SMS fallback;
* failed: kept with its error code.

A worker killed between claim and record leaves rows "sending"; they are due
again after ``PUSH_CLAIM_TIMEOUT_SECONDS``. A nudge sent twice is harmless:
the phone only pulls its state.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from apps.audit.services import AuditEntry, audit_events_record
from apps.core.actor import Actor
from apps.core.outbox import broker_errors, task_named
from apps.devices.events import DevicesAction
from apps.devices.locks import devices_lock
from apps.devices.models import Device, PushNudge
from apps.devices.sql import (
    PUSH_NEXT_DUE_IN,
    PUSH_NUDGES_CLAIM,
    PUSH_NUDGES_ENQUEUE,
    PUSH_OUTCOMES_RECORD,
    PUSH_RELEASE_UNACKED,
    PUSH_RENUDGE_ADVISORY_LOCK,
    PUSH_TOKENS_DEAD,
)
from apps.integrations.push.base import MAX_BATCH, Outcome, PushGateway, PushMessage, PushResult

logger = logging.getLogger(__name__)

S = PushNudge.Status


def push_nudges_enqueue(*, nudges: Iterable[tuple[int, int, int]]) -> None:
    """Queue a push for each (lender id, device id, state version), in the caller's transaction.

    One INSERT for any number of rows; the relay is started after commit.

    Audit: none, a push only tells the phone to fetch; the state it fetches was recorded
    when it was written, and the phone's acknowledgement is recorded when it comes.
    """
    rows = list(nudges)
    if not rows:
        return
    lenders, devices, versions = (list(column) for column in zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(PUSH_NUDGES_ENQUEUE, [lenders, devices, versions])
    relay_after_commit()


def push_nudges_current_enqueue(*, device_ids: list[int]) -> None:
    """Queue a push of each phone's current state version (something besides its state
    waits for it, e.g. a notice to show), in the caller's transaction.

    Audit: none, as ``push_nudges_enqueue``."""
    rows = Device.objects.filter(pk__in=device_ids).values_list(
        "lender_id", "pk", "desired_version"
    )
    push_nudges_enqueue(nudges=list(rows))


def relay_after_commit() -> None:
    """Start the relay once the caller's transaction commits (its nudges are then visible)."""
    transaction.on_commit(_relay_kick)


def _relay_kick() -> None:
    relay = task_named("devices.push_relay")
    try:  # fail fast (no publish retries): the request is not held up
        relay.apply_async(retry=False)  # lint: allow SC404 run by on_commit in relay_after_commit
    except broker_errors():  # beat's minutely relay sends it later
        logger.warning("push relay not started; the outbox keeps the nudge", exc_info=True)


def retry_delay(*, attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never shorter than the provider asked."""
    ceiling = min(
        settings.PUSH_RETRY_MAX_SECONDS, settings.PUSH_RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    )
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311  (jitter, not a secret)
    return max(delay, retry_after or 0.0)


@dataclass
class RelayReport:
    batches: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def push_relay_run(*, gateway: PushGateway, time_budget: float = 50.0) -> RelayReport:
    """Send due nudges in batches until none is due or ``time_budget`` seconds have passed."""
    report = RelayReport()
    deadline = time.monotonic() + time_budget
    while time.monotonic() < deadline:
        sent = _relay_batch(gateway=gateway, report=report)
        if not sent:
            break
        report.batches += 1
    return report


_FOLLOW_UP_BOOKED = "devices:push_relay:follow_up"


def push_relay(*, gateway: PushGateway, follow_up: bool = False) -> float | None:
    """One relay run; returns in how many seconds a follow-up run should start, if one
    should: a retry falls due within the minute and no other run has booked that
    follow-up (later retries are beat's minutely run). So kicks after many commits
    do not each start a chain of follow-ups. The booked follow-up gives its booking
    back as it starts, so it can book the next one and the chain goes on until
    nothing waits."""
    if follow_up:
        cache.delete(_FOLLOW_UP_BOOKED)
    push_relay_run(gateway=gateway)
    due_in = push_next_due_in()
    if due_in is None or due_in >= 60:
        return None
    # held well past the countdown: a follow-up waiting in a busy queue keeps its booking,
    # so kicks meanwhile start no second chain (beat's minute covers a lost follow-up)
    if not cache.add(_FOLLOW_UP_BOOKED, 1, timeout=int(due_in) + 60):
        return None
    return due_in


def push_next_due_in() -> float | None:
    """Seconds until the next retry falls due (0 if one is due now), or None if none waits."""
    with connection.cursor() as cursor:
        cursor.execute(PUSH_NEXT_DUE_IN)
        (seconds,) = cursor.fetchone()
    return None if seconds is None else max(float(seconds), 0.0)


def _relay_batch(*, gateway: PushGateway, report: RelayReport) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(PUSH_NUDGES_CLAIM, [settings.PUSH_CLAIM_TIMEOUT_SECONDS, MAX_BATCH])
        claimed = cursor.fetchall()
    if not claimed:
        return 0
    claims = {nudge_id: attempts for nudge_id, _, _, attempts in claimed}
    newest: dict[int, tuple[int, int, int]] = {}
    outcomes: dict[int, tuple[str, str, str, float]] = {}
    for nudge_id, device_id, version, attempts in claimed:
        kept = newest.get(device_id)
        if kept is None or version > kept[1]:
            if kept is not None:
                outcomes[kept[0]] = (S.SUPERSEDED, "", "", 0.0)
            newest[device_id] = (nudge_id, version, attempts)
        else:
            outcomes[nudge_id] = (S.SUPERSEDED, "", "", 0.0)
    addresses = {
        pk: (token, kind)
        for pk, token, kind in Device.objects.filter(pk__in=newest, fcm_token_dead_at__isnull=True)
        .exclude(fcm_token="")
        .values_list("pk", "fcm_token", "push_address_kind")
    }
    messages, attempts_of = [], {}
    for device_id, (nudge_id, version, attempts) in newest.items():
        if device_id in addresses:
            token, kind = addresses[device_id]
            messages.append(
                PushMessage(device_id=device_id, token=token, version=version, kind=kind)
            )
            attempts_of[device_id] = (nudge_id, attempts)
        else:
            outcomes[nudge_id] = (S.DEAD, "", "no_push_address", 0.0)
    results = gateway.send(messages) if messages else []
    dead: list[PushMessage] = []
    for message, result in zip(messages, results, strict=True):
        nudge_id, attempts = attempts_of[message.device_id]
        outcomes[nudge_id] = _outcome(result, attempts=attempts)
        if result.outcome == Outcome.DEAD:
            dead.append(message)
    _record(outcomes=outcomes, claims=claims, dead=dead)
    for status, *_ in outcomes.values():
        report.add(status)
    return len(claimed)


def _outcome(result: PushResult, *, attempts: int) -> tuple[str, str, str, float]:
    if result.outcome == Outcome.SENT:
        return S.SENT, result.message_id, "", 0.0
    if result.outcome == Outcome.RETRY and attempts < settings.PUSH_MAX_ATTEMPTS:
        delay = retry_delay(attempts=attempts, retry_after=result.retry_after)
        return S.PENDING, "", result.error_code, delay
    if result.outcome == Outcome.DEAD:
        return S.DEAD, "", result.error_code, 0.0
    return S.FAILED, "", result.error_code, 0.0


@transaction.atomic
def _record(
    *,
    outcomes: dict[int, tuple[str, str, str, float]],
    claims: dict[int, int],
    dead: list[PushMessage],
) -> None:
    """Write the outcomes of one claim. A row reclaimed by another relay meanwhile (its
    attempts moved on) keeps the other relay's record; this one is dropped and logged."""
    ids = list(outcomes)
    columns = list(zip(*outcomes.values(), strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            PUSH_OUTCOMES_RECORD, [ids, *(list(c) for c in columns), [claims[i] for i in ids]]
        )
        recorded = {row[0] for row in cursor.fetchall()}
        if len(recorded) < len(ids):
            logger.warning(
                "push outcomes dropped: %s nudges were reclaimed", len(ids) - len(recorded)
            )
        if not dead:
            return
        devices_lock(cursor, device_ids=sorted(m.device_id for m in dead))
        cursor.execute(PUSH_TOKENS_DEAD, [[m.device_id for m in dead], [m.token for m in dead]])
        marked = cursor.fetchall()
    by_lender: dict[int, list[AuditEntry]] = {}
    for device_id, lender_id in marked:
        by_lender.setdefault(lender_id, []).append(
            AuditEntry(
                actor=Actor.system(),
                action=DevicesAction.PUSH_ADDRESS_DEAD,
                target=Device(pk=device_id, lender_id=lender_id),
                data={"fallback": "sms"},
            )
        )
    for lender_id, entries in sorted(by_lender.items()):
        audit_events_record(lender_id=lender_id, entries=entries)


def push_release_renudge() -> int:
    """Push the released state again to phones that have not acknowledged it yet.

    A release must reach the phone: beat runs this every few minutes, and a
    phone is nudged again after ``PUSH_RELEASE_RENUDGE_SECONDS``, doubling
    with each nudge up to six hours, for 30 days (then the back office's list
    of phones out of sync is where it shows). Phones without a live push
    address are left to check in on their own. One run at a time (advisory
    lock); returns how many phones were nudged.

    Audit: none, the release was recorded when it was decided; these pushes only repeat
    the nudge, as ``push_nudges_enqueue``.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(PUSH_RENUDGE_ADVISORY_LOCK, [_RENUDGE_LOCK])
        cursor.execute(
            PUSH_RELEASE_UNACKED,
            {"base": settings.PUSH_RELEASE_RENUDGE_SECONDS, "cap": 6 * 3600, "give_up_days": 30},
        )
        rows = cursor.fetchall()
        push_nudges_enqueue(nudges=rows)
    return len(rows)


_RENUDGE_LOCK = 7302
