"""A lender's funds-alerts account and a customer's consent to account reading, made through
the real services."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from apps.core.actor import Actor
from apps.customers.models import AccountReadingConsent, Customer
from apps.customers.services import account_reading_consent_give, plaid_item_link
from apps.integrations.services import provider_account_save
from apps.lenders.models import Lender
from tools.fakes.plaid import FakePlaid

ALERTS_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def funds_account(lender: Lender, *, secret: str = ALERTS_SECRET) -> None:
    provider_account_save(
        lender_id=lender.pk,
        provider="funds_alerts",
        enabled=True,
        settings={"aggregator": "Plaid"},
        secrets={"alerts_secret": secret},
        actor=Actor.system(),
    )


def reading_consent(customer: Customer, *, days: int = 180) -> AccountReadingConsent:
    return account_reading_consent_give(
        customer_id=customer.pk,
        lender_id=customer.lender_id,
        lender_name=customer.lender.name,
        provider="Plaid",
        provider_name="Plaid",
        actor=Actor.system(),
        days=days,
    )


@contextmanager
def plaid_running(settings: Any) -> Iterator[FakePlaid]:
    """Plaid's API as a loopback fake, where the product's Plaid client calls it."""
    fake = FakePlaid()
    settings.PLAID_API_BASE = fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def plaid_account(lender: Lender, fake: FakePlaid) -> None:
    """The lender's Plaid account in use, with a team's keys at ``fake``."""
    client_id, secret = fake.team()
    provider_account_save(
        lender_id=lender.pk,
        provider="plaid",
        enabled=True,
        settings={"environment": "sandbox"},
        secrets={"client_id": client_id, "secret": secret},
        actor=Actor.system(),
    )


def plaid_item(
    consent: AccountReadingConsent,
    fake: FakePlaid,
    *,
    currency: str,
    available: str,
    login_required: bool = False,
) -> tuple[str, str]:
    """A Plaid Item at ``fake`` holding ``available``, linked under ``consent``: its
    ``item_id`` and access token."""
    item_id, token = fake.item(
        currency=currency, available=available, login_required=login_required
    )
    plaid_item_link(
        consent_id=consent.pk,
        lender_id=consent.lender_id,
        item_id=item_id,
        access_token=token,
        actor=Actor.system(),
    )
    return item_id, token


__all__ = [
    "ALERTS_SECRET",
    "funds_account",
    "plaid_account",
    "plaid_item",
    "plaid_running",
    "reading_consent",
    "timedelta",
]
