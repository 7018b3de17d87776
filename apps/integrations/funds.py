"""Funds alerts: an account-information provider (or the lender's own bridge to one) tells us
that money arrived in a customer's account, signed in the Standard Webhooks format.

The lender is named by the ``X-Lender`` header (its slug, as the payment webhooks name it),
whose secret checks the signature. The alert is a JSON body with ``type``
``funds.available``, the customer's reference (``customer_reference``: the opaque reference of their consent to
account reading, ``apps.customers``), the ``provider`` that saw the money, the
``amount_available`` as a decimal string with its ``currency``, and when it was seen
(``observed_at``, ISO 8601). It carries ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers: ``v1,`` and the base64 HMAC-SHA256, under the lender's
secret, of ``<id>.<timestamp>.<body>`` (standardwebhooks.com), checked by the format's own
reference library (``standardwebhooks``). A timestamp more than ``TOLERANCE`` away from now
is refused as stale before the signature is checked; the ``webhook-id`` is the replay key
(the caller keeps it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.integrations.models import ProviderAccount
from apps.integrations.payments.credentials import unseal
from apps.integrations.selectors import provider_account_by_slug

FUNDS_ALERTS = ProviderAccount.Provider.FUNDS_ALERTS.value
EVENT_TYPE = "funds.available"
TOLERANCE = timedelta(minutes=5)  # the format's own


class AlertRefused(Exception):
    """An alert not to act on: ``problem`` is ``signature_invalid``, ``stale`` or
    ``malformed``."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FundsAlert:
    webhook_id: str
    reference: str
    provider: str
    amount: Decimal
    currency: str
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class FundsAccount:
    lender_id: int
    lender_slug: str
    aggregator: str
    secret: str


def funds_account_for(*, lender_slug: str) -> FundsAccount | None:
    """The lender's funds-alerts account in use, with its opened secret; None without one."""
    account = provider_account_by_slug(lender_slug=lender_slug, provider=FUNDS_ALERTS)
    if account is None or not account.enabled:
        return None
    secret = unseal(account.sealed_secrets).get("alerts_secret", "")
    if not secret:
        return None
    return FundsAccount(
        lender_id=account.lender_id,
        lender_slug=lender_slug,
        aggregator=str(account.settings.get("aggregator", "")),
        secret=secret,
    )


def funds_alert_read(
    *, secret: str, body: bytes, headers: Mapping[str, str], now: datetime | None = None
) -> FundsAlert:
    """The alert in ``body`` once its timestamp is fresh and its signature holds under
    ``secret``; ``AlertRefused`` otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    now = now or datetime.now(UTC)
    try:
        sent = datetime.fromtimestamp(int(lowered.get("webhook-timestamp", "")), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise AlertRefused("signature_invalid") from exc
    if abs(now - sent) > TOLERANCE:
        raise AlertRefused("stale")
    try:
        data = Webhook(secret).verify(body, dict(lowered))
    except (WebhookVerificationError, ValueError) as exc:
        raise AlertRefused("signature_invalid") from exc
    try:
        observed = datetime.fromisoformat(str(data["observed_at"]))
        amount = Decimal(str(data["amount_available"]))
        alert = FundsAlert(
            webhook_id=lowered["webhook-id"][:100],
            reference=str(data["customer_reference"])[:40],
            provider=str(data["provider"])[:40],
            amount=amount,
            currency=str(data["currency"]).upper()[:3],
            observed_at=observed if observed.tzinfo else observed.replace(tzinfo=UTC),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise AlertRefused("malformed") from exc
    if data.get("type") != EVENT_TYPE or not amount.is_finite() or amount < 0:
        raise AlertRefused("malformed")
    return alert
