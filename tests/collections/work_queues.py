"""A payment from the provider, received now, for the work-queue tests."""

from decimal import Decimal

from django.utils import timezone

from apps.collections.models import Loan
from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.money import Money


def pay(loan: Loan, amount: Decimal, ref: str) -> None:
    payment_record(
        loan_id=loan.pk,
        amount=Money(amount, loan.currency),
        channel="provider",
        provider="demo",
        provider_ref=ref,
        received_at=timezone.now(),
        actor=Actor.system(),
    )
