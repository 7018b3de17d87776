"""A lender's webhook endpoints, and the delivery of its public events to them.

Deliveries are derived from the audit chain: every change a lender may follow writes its
audit event in the transaction of the change, and ``webhooks_project`` turns the public ones
(``apps.audit.public``) into one ``WebhookDelivery`` per endpoint, in chain order, with one
statement per lender. ``webhooks_send`` posts them in the Standard Webhooks format, one loan's
events after one another, retried with exponential backoff and jitter for
``WEBHOOK_RETRY_FOR_HOURS``. A receiver answering 410 Gone turns its endpoint off at once;
one failing for ``WEBHOOK_DISABLE_AFTER_HOURS`` is turned off, and the lender's admins are
told by email. ``webhooks_dispatch`` does both; the dispatcher task runs it when a change
commits (``webhooks_nudge``) and every minute.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from standardwebhooks.webhooks import Webhook

from apps.audit.public import PUBLIC_ACTIONS, PUBLIC_TYPES, public_events_params
from apps.core.actor import Actor
from apps.core.audit import audit_record
from apps.core.errors import NotFound
from apps.core.outbox import task_enqueue_on_commit
from apps.integrations.events import IntegrationsAction
from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.integrations.payments.credentials import seal, unseal
from apps.integrations.sql import (
    CLAIM,
    CLAIM_LOCK,
    CURSOR_START,
    CURSORS_BEHIND,
    NEXT_RETRY,
    OUTCOMES,
    PROJECT,
)
from apps.lenders.models import Membership

logger = logging.getLogger(__name__)

D = WebhookDelivery.Status
RETRY_FACTOR = 3
PROJECT_WINDOW = 5_000  # events of a chain one projection statement reads at most
DISPATCH_TASK = "integrations.webhooks_dispatch"


# --- endpoints -------------------------------------------------------------------------


def webhook_secret_new() -> str:
    """A fresh signing secret in the Standard Webhooks form: ``whsec_`` and 32 random bytes
    in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _clean(*, url: str, event_types: Sequence[str]) -> tuple[str, list[str]]:
    url = url.strip()
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValidationError({"url": _("Give an https:// address.")})
    unknown = sorted(set(event_types) - set(PUBLIC_TYPES))
    if unknown:
        raise ValidationError(
            {"event_types": _("Unknown event types: %(types)s.") % {"types": ", ".join(unknown)}}
        )
    return url, [t for t in PUBLIC_TYPES if t in set(event_types)]


def _endpoint_lock(*, lender_id: int, endpoint_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .filter(pk=endpoint_id, lender_id=lender_id)
        .first()
    )
    if endpoint is None:  # another lender's endpoint looks like none at all
        raise NotFound(endpoint_id=endpoint_id)
    return endpoint


def _public(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
    }


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    """An endpoint just created or rotated, and its new secret: shown once, never again."""

    endpoint: WebhookEndpoint
    secret: str


@transaction.atomic
def webhook_endpoint_create(
    *,
    lender_id: int,
    url: str,
    event_types: Sequence[str] = (),
    description: str = "",
    enabled: bool = True,
    actor: Actor,
) -> EndpointWithSecret:
    """Add an endpoint for the lender's public events (of ``event_types``; none: all), with a
    new secret. Events from its creation on reach it. Starts the lender's cursor at its
    chain's head if it has none (no history is replayed). Emits
    ``integrations.webhook_endpoint.saved`` (never the secret)."""
    url, types = _clean(url=url, event_types=event_types)
    secret = webhook_secret_new()
    endpoint = WebhookEndpoint(
        lender_id=lender_id,
        url=url,
        description=description.strip(),
        event_types=types,
        enabled=enabled,
        disabled_reason="" if enabled else WebhookEndpoint.Disabled.BY_LENDER,
        sealed_secrets=seal({"current": secret}),
    )
    endpoint.full_clean()
    endpoint.save()
    with connection.cursor() as cursor:
        cursor.execute(CURSOR_START, {"lender": lender_id})
    audit_record(
        actor=actor,
        action=IntegrationsAction.WEBHOOK_ENDPOINT_SAVED,
        target=endpoint,
        data={"old": {}, "new": _public(endpoint)},
    )
    _endpoints_known.pop(lender_id, None)
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


@transaction.atomic
def webhook_endpoint_update(
    *,
    lender_id: int,
    endpoint_id: int,
    url: str,
    event_types: Sequence[str],
    description: str,
    enabled: bool,
    actor: Actor,
) -> WebhookEndpoint:
    """Change an endpoint's address, types, description or whether it is in use (turning it
    back on clears why it was off, and its failing clock). Locks it. Emits
    ``integrations.webhook_endpoint.saved`` with the old and new values, if any changed."""
    endpoint = _endpoint_lock(lender_id=lender_id, endpoint_id=endpoint_id)
    url, types = _clean(url=url, event_types=event_types)
    old = _public(endpoint)
    endpoint.url, endpoint.event_types = url, types
    endpoint.description, endpoint.enabled = description.strip(), enabled
    new = _public(endpoint)
    if old == new:
        return endpoint
    if enabled and not old["enabled"]:
        endpoint.disabled_reason, endpoint.failing_since = "", None
    elif not enabled and old["enabled"]:
        endpoint.disabled_reason = WebhookEndpoint.Disabled.BY_LENDER
    endpoint.full_clean()
    endpoint.save()
    audit_record(
        actor=actor,
        action=IntegrationsAction.WEBHOOK_ENDPOINT_SAVED,
        target=endpoint,
        data={"old": old, "new": new},
    )
    _endpoints_known.pop(lender_id, None)
    return endpoint


@transaction.atomic
def webhook_endpoint_secret_rotate(
    *, lender_id: int, endpoint_id: int, actor: Actor
) -> EndpointWithSecret:
    """Give the endpoint a new secret; the one it had goes on signing beside it for
    ``WEBHOOK_ROTATION_HOURS`` (each delivery then carries two ``v1,`` signatures), so the
    receiver can switch without losing an event. Locks it. Emits
    ``integrations.webhook_endpoint.secret_rotated``."""
    endpoint = _endpoint_lock(lender_id=lender_id, endpoint_id=endpoint_id)
    secret = webhook_secret_new()
    current = unseal(endpoint.sealed_secrets)["current"]
    endpoint.sealed_secrets = seal({"current": secret, "previous": current})
    endpoint.previous_until = timezone.now() + timedelta(hours=settings.WEBHOOK_ROTATION_HOURS)
    endpoint.save(update_fields=["sealed_secrets", "previous_until", "updated_at"])
    audit_record(
        actor=actor,
        action=IntegrationsAction.WEBHOOK_SECRET_ROTATED,
        target=endpoint,
        data={"previous_until": endpoint.previous_until},
    )
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


@transaction.atomic
def webhook_endpoint_delete(*, lender_id: int, endpoint_id: int, actor: Actor) -> None:
    """Remove an endpoint and its delivery log. Locks it. Emits
    ``integrations.webhook_endpoint.deleted``."""
    endpoint = _endpoint_lock(lender_id=lender_id, endpoint_id=endpoint_id)
    audit_record(
        actor=actor,
        action=IntegrationsAction.WEBHOOK_ENDPOINT_DELETED,
        target=endpoint,
        data={"old": _public(endpoint)},
    )
    endpoint.delete()
    _endpoints_known.pop(lender_id, None)


@transaction.atomic
def webhook_deliveries_resend(*, lender_id: int, delivery_ids: Iterable[int], actor: Actor) -> int:
    """Send these deliveries of the lender again ("send again" in the back office): each is
    pending again, due now, with a fresh retry window, whatever became of it. Returns how
    many. Emits ``integrations.webhook_deliveries.resent``."""
    now = timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(lender_id=lender_id, pk__in=list(delivery_ids))
        .order_by("id")
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=D.PENDING, next_attempt_at=now, retry_from=now, updated_at=now
    )
    audit_record(
        actor=actor,
        action=IntegrationsAction.WEBHOOK_DELIVERIES_RESENT,
        lender_id=lender_id,
        data={"delivery_ids": ids},
    )
    task_enqueue_on_commit(DISPATCH_TASK)
    return len(ids)


# --- the nudge ---------------------------------------------------------------------------

# lender id -> (until when it is known, whether it has an endpoint in use): the nudge asks
# the database once a minute per lender at most; a lender that adds its first endpoint in
# another process is caught by beat's run meanwhile
_endpoints_known: dict[int, tuple[float, bool]] = {}
KNOWN_FOR_SECONDS = 60.0


def _has_endpoints(lender_id: int) -> bool:
    known = _endpoints_known.get(lender_id)
    if known is not None and known[0] > time.monotonic():
        return known[1]
    has = WebhookEndpoint.objects.filter(lender_id=lender_id, enabled=True).exists()
    _endpoints_known[lender_id] = (time.monotonic() + KNOWN_FOR_SECONDS, has)
    return has


class _Nudged:
    """The mark, among the transaction's on-commit callbacks, that it nudges ``lender_id``'s
    dispatch already (rolled back with the savepoint that set it)."""

    def __init__(self, lender_id: int) -> None:
        self.lender_id = lender_id

    def __call__(self) -> None:
        return None


def webhooks_nudge(lender_id: int | None, actions: Sequence[str]) -> None:
    """After an append to ``lender_id``'s chain (``apps.core.audit`` listener): if a public
    event was appended and the lender has an endpoint in use, dispatch once the transaction
    commits (through the task outbox: a broker outage loses nothing). Once per transaction
    and lender."""
    if lender_id is None or PUBLIC_ACTIONS.isdisjoint(actions):
        return
    if not _has_endpoints(lender_id):
        return
    pending = connection.run_on_commit
    if any(isinstance(c[1], _Nudged) and c[1].lender_id == lender_id for c in pending):
        return
    transaction.on_commit(_Nudged(lender_id))
    task_enqueue_on_commit(DISPATCH_TASK, lender_id=lender_id)


# --- projection --------------------------------------------------------------------------


def webhooks_project(*, lender_id: int | None = None) -> int:
    """Turn the public events appended since each lender's cursor (only ``lender_id``'s if
    given) into deliveries, one statement per lender and window of its chain; returns how
    many deliveries were written. Each lender's cursor is locked (skipped if another
    dispatcher holds it) while its stretch is projected, so an event is projected once
    (``webhook_delivery_once`` holds regardless).

    Audit: none, a delivery is derived from the audit event it carries.
    """
    written = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(CURSORS_BEHIND, {"lender": lender_id})
            behind = cursor.fetchall()
            now = timezone.now()
            for lender, after, chain_id, head in behind:
                upto = min(after + PROJECT_WINDOW, head)
                cursor.execute(
                    PROJECT,
                    {
                        **public_events_params(
                            chain_id=chain_id, after=after, upto=upto, limit=PROJECT_WINDOW
                        ),
                        "lender": lender,
                        "upto": upto,
                        "now": now,
                    },
                )
                written += cursor.fetchone()[0]
        if not any(head - after > PROJECT_WINDOW for _, after, _, head in behind):
            return written


# --- sending -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Claimed:
    id: int
    endpoint_id: int
    loan_key: int
    body: bytes
    msg_id: str
    retry_from: datetime
    attempts: int
    status: str = D.PENDING
    tried: int = 0
    code: int | None = None
    error: str = ""
    next_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    signers: tuple[Webhook, ...]


_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's sending threads, kept from batch to batch with their sessions: each
    keeps its connections to the receivers alive, rather than opening
    ``WEBHOOK_SEND_THREADS`` new ones a batch (a receiver's listen queue overflowed)."""
    global _pool  # one pool per process, made at its first send (after a worker's fork)
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.WEBHOOK_SEND_THREADS, thread_name_prefix="webhooks"
            )
        return _pool


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:  # one per sending thread: its kept-alive connections
        session = _local.session = requests.Session()
    return session


def _targets(endpoint_ids: set[int], now: datetime) -> dict[int, _Target]:
    targets = {}
    for endpoint in WebhookEndpoint.objects.filter(pk__in=endpoint_ids):
        sealed = unseal(endpoint.sealed_secrets)
        keys = [sealed["current"]]
        if sealed.get("previous") and endpoint.previous_until and endpoint.previous_until > now:
            keys.append(sealed["previous"])
        targets[endpoint.pk] = _Target(url=endpoint.url, signers=tuple(map(Webhook, keys)))
    return targets


def _post(delivery: _Claimed, target: _Target, sent_at: datetime) -> None:
    signature = " ".join(s.sign(delivery.msg_id, sent_at, delivery.body) for s in target.signers)
    headers = {
        "content-type": "application/json",
        "user-agent": "SmartCollection-Webhooks/1",
        "webhook-id": delivery.msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    delivery.tried = 1
    try:
        answer = _session().post(
            target.url,
            data=delivery.body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        delivery.error = type(exc).__name__
        return
    delivery.code = answer.status_code
    answer.close()
    if 200 <= answer.status_code < 300:
        delivery.status = D.DELIVERED
    else:
        delivery.error = f"HTTP {answer.status_code}"


def _retry_at(delivery: _Claimed, attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed tries, or None: its window is over."""
    delay = min(
        settings.WEBHOOK_RETRY_SECONDS * RETRY_FACTOR ** max(attempts - 1, 0),
        settings.WEBHOOK_RETRY_MAX_SECONDS,
    )
    delay *= secrets.SystemRandom().uniform(0.8, 1.2)  # jitter: retries of an outage spread out
    at = now + timedelta(seconds=delay)
    if at > delivery.retry_from + timedelta(hours=settings.WEBHOOK_RETRY_FOR_HOURS):
        return None
    return at


def _send_queue(queue: list[_Claimed], target: _Target | None, now: datetime) -> None:
    """One loan's claimed deliveries to one endpoint, in order, stopping at the first the
    receiver does not take."""
    for delivery in queue:
        if target is None:  # deleted meanwhile
            return
        _post(delivery, target, now)
        if delivery.status != D.DELIVERED:
            return


@dataclass
class SendResult:
    delivered: int = 0
    failed: int = 0
    claimed: int = 0


def webhooks_send(*, batch: int = 500, now: datetime | None = None) -> SendResult:
    """Post one batch of due deliveries (``CLAIM``), ``WEBHOOK_SEND_THREADS`` loans at a time,
    each loan's in order; record what came of each in one statement; turn off an endpoint
    that answered 410 or has failed since ``WEBHOOK_DISABLE_AFTER_HOURS`` ago, telling the
    lender's admins. At least once: a delivery is pending until a 2xx is recorded, so a
    sender that dies after a post sends it again (receivers dedupe on ``webhook-id``).

    Audit: none, each delivery row records its own attempts; turning an endpoint off
    emits ``integrations.webhook_endpoint.disabled``.
    """
    now = now or timezone.now()
    threads = settings.WEBHOOK_SEND_THREADS
    # long enough for a whole batch of timeouts: the lease must not end while posting
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * (batch // threads + 1) + 60)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK])
        cursor.execute(CLAIM, {"now": now, "batch": batch, "lease": lease})
        rows = sorted(cursor.fetchall())
    result = SendResult(claimed=len(rows))
    if not rows:
        return result
    queues: dict[tuple[int, int], list[_Claimed]] = {}
    for pk, endpoint_id, loan_key, payload, retry_from, attempts in rows:
        # the body is the stored JSON's text as PostgreSQL writes it: signed and sent as is
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        msg_id = json.loads(body)["id"]
        claimed = _Claimed(pk, endpoint_id, loan_key, body, msg_id, retry_from, attempts)
        queues.setdefault((endpoint_id, loan_key), []).append(claimed)
    targets = _targets({e for e, _ in queues}, now)
    sent_at = timezone.now()
    list(
        _executor().map(
            lambda item: _send_queue(item[1], targets.get(item[0][0]), sent_at),
            queues.items(),
        )
    )
    result.delivered, result.failed = _outcomes(queues, now=now)
    return result


def _outcomes(queues: dict[tuple[int, int], list[_Claimed]], *, now: datetime) -> tuple[int, int]:
    everything: list[_Claimed] = []
    ok_endpoints, failing_endpoints, gone = set(), set(), set()
    delivered = failed = 0
    for (endpoint_id, _loan), queue in queues.items():
        held_until: datetime | None = now
        for delivery in queue:
            if delivery.tried and delivery.status == D.DELIVERED:
                ok_endpoints.add(endpoint_id)
                delivered += 1
            elif delivery.tried:
                failing_endpoints.add(endpoint_id)
                if delivery.code == 410:  # the receiver is gone: no retry, endpoint off
                    gone.add(endpoint_id)
                else:
                    delivery.next_at = _retry_at(delivery, delivery.attempts + 1, now)
                if delivery.next_at is None:
                    delivery.status = D.FAILED
                    failed += 1
                held_until = delivery.next_at or now
            else:  # waited behind a failure of its loan: it goes after that one
                delivery.next_at = held_until
            everything.append(delivery)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                OUTCOMES,
                {
                    "now": now,
                    "ids": [d.id for d in everything],
                    "statuses": [d.status for d in everything],
                    "tried": [d.tried for d in everything],
                    "next": [d.next_at for d in everything],
                    "codes": [d.code for d in everything],
                    "errors": [d.error[:200] for d in everything],
                },
            )
        _endpoints_health(
            ok=ok_endpoints, failing=failing_endpoints - ok_endpoints, gone=gone, now=now
        )
    return delivered, failed


def _endpoints_health(*, ok: set[int], failing: set[int], gone: set[int], now: datetime) -> None:
    """Clear the failing clock of endpoints that took an event; start it for those that took
    none; turn off those that answered 410 and those failing for too long."""
    if ok:
        WebhookEndpoint.objects.filter(pk__in=ok, failing_since__isnull=False).update(
            failing_since=None, updated_at=now
        )
    if failing:
        WebhookEndpoint.objects.filter(pk__in=failing, failing_since__isnull=True).update(
            failing_since=now, updated_at=now
        )
    cutoff = now - timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)
    for endpoint in WebhookEndpoint.objects.select_for_update().filter(
        pk__in=failing | gone, enabled=True
    ):
        if endpoint.pk in gone:
            reason = WebhookEndpoint.Disabled.GONE
        elif endpoint.failing_since is not None and endpoint.failing_since <= cutoff:
            reason = WebhookEndpoint.Disabled.FAILING
        else:
            continue
        _endpoint_turn_off(endpoint=endpoint, reason=reason)


def _endpoint_turn_off(*, endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.enabled, endpoint.disabled_reason = False, reason
    endpoint.save(update_fields=["enabled", "disabled_reason", "updated_at"])
    audit_record(
        actor=Actor.system(),
        action=IntegrationsAction.WEBHOOK_ENDPOINT_DISABLED,
        target=endpoint,
        data={"reason": reason, "failing_since": endpoint.failing_since},
    )
    _endpoints_known.pop(endpoint.lender_id, None)
    admins = list(
        get_user_model()
        .objects.filter(
            membership__lender_id=endpoint.lender_id,
            membership__role=Membership.Role.LENDER_ADMIN,
            is_active=True,
        )
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not admins:
        return
    why = (
        _("it answered 410 Gone")
        if reason == WebhookEndpoint.Disabled.GONE
        else _("it has not taken an event for a day")
    )
    subject = _("Webhook endpoint turned off: %(url)s") % {"url": endpoint.url}
    body = _(
        "Your webhook endpoint %(url)s was turned off because %(why)s. Its events wait in the "
        "delivery log: fix the receiver, turn the endpoint back on in the back office, and "
        "send the failed deliveries again."
    ) % {"url": endpoint.url, "why": why}
    transaction.on_commit(lambda: send_mail(subject, body, None, admins, fail_silently=True))


# --- the dispatcher ----------------------------------------------------------------------


def webhooks_dispatch(*, seconds: float, lender_id: int | None = None) -> dict[str, int]:
    """Project new public events into deliveries, then send what is due, batch after batch,
    for at most ``seconds``. Returns the counts, ``more``: 1 when it stopped with
    deliveries still due, and ``retry_in``: the seconds until a retry falls due within the
    minute (0: none). Safe to run twice, or in several workers at once.

    Audit: none for a delivery (its row is its record); turning an endpoint off emits
    ``integrations.webhook_endpoint.disabled``."""
    deadline = time.monotonic() + seconds
    total = {"projected": webhooks_project(lender_id=lender_id), "delivered": 0, "failed": 0}
    while True:
        result = webhooks_send()
        total["delivered"] += result.delivered
        total["failed"] += result.failed
        more = result.claimed > 0
        if not more or time.monotonic() >= deadline:
            total["more"] = int(more)
            total["retry_in"] = 0 if more else _retry_in(timezone.now())
            return total


def _retry_in(now: datetime) -> int:
    """Seconds until the next retry falls due, if within the minute (else 0: beat's next run
    takes it), so a retry 5 s after a failure happens after 5 s, not at beat's next run."""
    with connection.cursor() as cursor:
        cursor.execute(NEXT_RETRY, [now])
        due: datetime | None = cursor.fetchone()[0]
    if due is None or due > now + timedelta(seconds=60):
        return 0
    return max(1, math.ceil((due - now).total_seconds()))
