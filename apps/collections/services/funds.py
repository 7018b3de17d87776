"""Funds alerts: money arrived in a late customer's account, so a link to pay what is due goes
to them now, when paying is easiest.

The alert (``apps.integrations.funds``: signed, fresh) names the customer by the reference of
their consent to account reading. It is acted on only under a consent in force, for a loan
that is active, not paused and late (the amount due is what is late now), inside the
country's contact hours, and at most once a day per loan; the link goes by the customer's
best channel (the one they last wrote on, else the lender's order) and counts in their weekly
limit. Every alert kept says what became of it, and is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_event_record
from apps.collections.events import CollectionsAction
from apps.collections.models import FundsAlert, InboundMessage, Loan
from apps.collections.selectors import loan_for_reply, loan_overview
from apps.collections.services.replies import customer_pay_link
from apps.core.actor import Actor
from apps.core.money import Money
from apps.core.outbox import task_enqueue_on_commit
from apps.customers.models import AccountReadingConsent
from apps.customers.selectors import account_reading_consent_by_reference
from apps.customers.services import LOGIN_LINK_TTL
from apps.lenders.messages import message_book, message_language
from apps.lenders.models import Lender, MessageTemplate
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification
from apps.notifications.rules import contact_slot
from apps.notifications.selectors import notification_queued
from apps.notifications.services import DISPATCH_TASK, Draft, notifications_queue

logger = logging.getLogger(__name__)

OUT = FundsAlert.Outcome


@dataclass(frozen=True, slots=True)
class FundsAlertIn:
    """A verified alert, as plain values."""

    webhook_id: str
    reference: str
    provider: str
    available: Decimal
    currency: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class FundsAlertOutcome:
    outcome: str  # a FundsAlert.Outcome, or "duplicate" for a replay
    alert_id: int


@transaction.atomic
def funds_alert_apply(*, lender: Lender, alert: FundsAlertIn, actor: Actor) -> FundsAlertOutcome:
    """Keep ``alert`` and act on it (module docstring); returns what became of it.

    Idempotent on the alert's ``webhook-id``: a replay finds the first (``funds_alert_once``)
    and does nothing (``duplicate``). Emits ``collections.funds_alert.received`` with the
    outcome (never the amount available: it is the customer's balance, not the lender's).
    """
    now = timezone.now()
    consent = account_reading_consent_by_reference(lender_id=lender.pk, reference=alert.reference)
    customer = consent.customer if consent is not None else None
    loan = loan_for_reply(customer_id=customer.pk, lender_id=lender.pk) if customer else None
    outcome, due = _decide(consent=consent, loan=loan, lender=lender, now=now)
    row = FundsAlert(
        lender=lender,
        customer=customer,
        loan=loan,
        webhook_id=alert.webhook_id,
        provider=alert.provider,
        reference=alert.reference,
        available=alert.available,
        currency=alert.currency,
        observed_at=alert.observed_at,
        outcome=outcome,
        amount_due=due.amount if due is not None else None,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        first = FundsAlert.objects.filter(lender=lender, webhook_id=alert.webhook_id).first()
        if first is None:
            raise
        logger.info("funds alert replayed lender=%s alert=%s", lender.pk, first.pk)
        return FundsAlertOutcome("duplicate", first.pk)
    if outcome == OUT.SENT and loan is not None and customer is not None and due is not None:
        row.outcome = _send(lender=lender, loan=loan, customer_id=customer.pk, due=due, now=now)
        row.save(update_fields=["outcome", "updated_at"])
    audit_event_record(
        actor=actor,
        action=CollectionsAction.FUNDS_ALERT_RECEIVED,
        target=loan if loan is not None else customer,
        lender_id=lender.pk,
        data={
            "alert_id": row.pk,
            "webhook_id": alert.webhook_id,
            "provider": alert.provider,
            "outcome": row.outcome,
            "amount_due": str(row.amount_due) if row.amount_due is not None else "",
        },
    )
    return FundsAlertOutcome(row.outcome, row.pk)


def _decide(
    *, consent: AccountReadingConsent | None, loan: Loan | None, lender: Lender, now: datetime
) -> tuple[str, Money | None]:
    """Whether the alert may send a link (``SENT`` and the amount due) or why not."""
    if consent is None:
        return OUT.UNKNOWN_CUSTOMER, None
    if consent.revoked_at is not None and consent.revoked_at <= now:
        return OUT.CONSENT_REVOKED, None
    if consent.expires_at <= now or consent.given_at > now:
        return OUT.CONSENT_EXPIRED, None
    if loan is None:
        return OUT.NO_LOAN, None
    if loan.status != Loan.Status.ACTIVE or loan.released_with_arrears:
        return OUT.LOAN_CLOSED, None
    overview = loan_overview(loan=loan)
    if overview.pause_kind:
        return OUT.LOAN_PAUSED, None
    if overview.arrears.amount <= 0:
        return OUT.LOAN_CURRENT, None
    if contact_slot(country=lender.country, tz=lender.timezone, at=now) != now:
        return OUT.OUTSIDE_HOURS, overview.arrears
    return OUT.SENT, overview.arrears


def _best_channel(customer_id: int) -> str:
    """The channel the customer last wrote to the lender on ("" for none: the lender's
    order), where they read their texts."""
    last = (
        InboundMessage.objects.filter(customer_id=customer_id)
        .exclude(channel=InboundMessage.Channel.VOICE)
        .order_by("-received_at", "-id")
        .values_list("channel", flat=True)
        .first()
    )
    return last or ""


def _send(*, lender: Lender, loan: Loan, customer_id: int, due: Money, now: datetime) -> str:
    """Queue the link to pay ``due`` for the customer now: once a day per loan (the lender's
    day), counted in the weekly limit. Returns the alert's outcome."""
    key = f"funds:{loan.pk}:{lender_local_date(lender=lender, at=now).isoformat()}"
    if notification_queued(lender_id=lender.pk, dedupe_key=key) is not None:
        return OUT.ALREADY_TODAY
    customer = loan.customer
    language = message_language(customer.locale or lender.locale)
    body = message_book(lender).render(
        MessageTemplate.Kind.FUNDS_PAY_LINK,
        language,
        {
            "amount": due,
            "link": customer_pay_link(customer=customer, lender=lender),
            "minutes": int(LOGIN_LINK_TTL.total_seconds()) // 60,
        },
    )
    draft = Draft(
        customer_id=customer_id,
        loan_id=loan.pk,
        kind=Notification.Kind.FUNDS,
        locale=language,
        body=body,
        dedupe_key=key,
        first_channel=_best_channel(customer_id),
    )
    if not notifications_queue(lender=lender, drafts=[draft]):
        return OUT.ALREADY_TODAY  # queued meanwhile by an alert racing this one
    queued = notification_queued(lender_id=lender.pk, dedupe_key=key)
    if queued is not None and queued.status == Notification.Status.SUPPRESSED:
        return OUT.SUPPRESSED
    task_enqueue_on_commit(DISPATCH_TASK)
    return OUT.SENT
