"""A lender's funds-alerts account and a customer's consent to account reading, made through
the real services."""

from datetime import timedelta

from apps.core.actor import Actor
from apps.customers.models import AccountReadingConsent, Customer
from apps.customers.services import account_reading_consent_give
from apps.integrations.services import provider_account_save
from apps.lenders.models import Lender

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


__all__ = ["ALERTS_SECRET", "funds_account", "reading_consent", "timedelta"]
