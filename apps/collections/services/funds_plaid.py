"""Funds alerts from Plaid: Plaid says an Item has news (``apps.integrations.funds_plaid``), so
its balance is read and, when it covers what is due, the Item's consent becomes a funds alert
(``apps.collections.services.funds``: the same rules, once a day, audited).

Nothing is read from the bank without a reason: not for an Item the lender never linked (it
may be another lender's), nor under a consent expired or revoked, nor for a loan with nothing
due (paused, current, released). Each webhook that is not handed on is audited with why
(``collections.funds_alert.plaid_ignored``), never with the balance.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_event_record
from apps.collections.events import CollectionsAction
from apps.collections.models import Loan
from apps.collections.selectors import loan_for_reply
from apps.collections.services.funds import FundsAlertIn, _decide, funds_alert_apply
from apps.core.actor import Actor
from apps.customers.selectors import plaid_item_by_item_id
from apps.integrations.funds_plaid import (
    PLAID,
    PlaidAccount,
    PlaidError,
    PlaidWebhook,
    available_balance,
)
from apps.lenders.models import Lender

# the webhooks that may mean money arrived: new transactions on the Item
BALANCE_WEBHOOKS = frozenset(
    {("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE"), ("TRANSACTIONS", "DEFAULT_UPDATE")}
)


@dataclass(frozen=True, slots=True)
class PlaidOutcome:
    outcome: str  # a FundsAlert.Outcome, "duplicate", or why the webhook was not handed on
    alert_id: int | None


def plaid_webhook_apply(
    *, lender: Lender, account: PlaidAccount, webhook: PlaidWebhook, actor: Actor
) -> PlaidOutcome:
    """Act on a verified Plaid ``webhook`` for ``lender`` (module docstring): ``ignored``
    for a code that says nothing of money; ``unknown_item``, a refusal of the alert's rules
    (``consent_expired``, ``loan_current``, ...), ``plaid_error`` or ``balance_below_due``
    when no alert follows; else what became of the alert."""
    if (webhook.webhook_type, webhook.webhook_code) not in BALANCE_WEBHOOKS:
        return PlaidOutcome("ignored", None)
    item = plaid_item_by_item_id(lender_id=lender.pk, item_id=webhook.item_id)
    if item is None:
        return _ignored(lender=lender, webhook=webhook, actor=actor, why="unknown_item")
    consent = item.consent
    loan = loan_for_reply(customer_id=consent.customer_id, lender_id=lender.pk)
    now = timezone.now()
    outcome, due = _decide(consent=consent, loan=loan, lender=lender, now=now)
    if due is None:
        return _ignored(lender=lender, webhook=webhook, actor=actor, why=outcome, loan=loan)
    try:
        balance = available_balance(
            account=account, sealed_token=item.sealed_access_token, currency=due.currency
        )
    except PlaidError as exc:
        return _ignored(
            lender=lender, webhook=webhook, actor=actor, why="plaid_error", loan=loan, code=exc.code
        )
    if balance is None or balance < due.amount:
        return _ignored(
            lender=lender, webhook=webhook, actor=actor, why="balance_below_due", loan=loan
        )
    alert = funds_alert_apply(
        lender=lender,
        alert=FundsAlertIn(
            webhook_id=f"plaid:{webhook.key}",
            reference=consent.reference,
            provider=PLAID,
            available=balance,
            currency=due.currency,
            observed_at=now,
        ),
        actor=actor,
    )
    return PlaidOutcome(alert.outcome, alert.alert_id)


@transaction.atomic
def _ignored(
    *,
    lender: Lender,
    webhook: PlaidWebhook,
    actor: Actor,
    why: str,
    loan: Loan | None = None,
    code: str = "",
) -> PlaidOutcome:
    audit_event_record(
        actor=actor,
        action=CollectionsAction.FUNDS_PLAID_IGNORED,
        target=loan,
        lender_id=lender.pk,
        data={
            "item_id": webhook.item_id,
            "webhook_code": webhook.webhook_code,
            "why": why,
            "plaid_error": code,
        },
    )
    return PlaidOutcome(why, None)
