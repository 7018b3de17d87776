"""A locked phone, a cash payment and the support PIN's numbers, for the offline unlock tests
(tests/devices/test_services_offline.py holds the scheme's own)."""

from decimal import Decimal

from django.utils import timezone

from apps.collections.models import Loan
from apps.collections.services import PaymentOutcome, payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.models import Device
from apps.devices.services.offline import offline_terms
from tests.collections.sweeps import phone_on_loan, sweep, today
from tools.agent_sim.offline import pin_challenge as phone_challenge
from tools.agent_sim.offline import support_pin as phone_pin


def locked_phone(lender) -> tuple[Device, Loan]:
    """An enrolled phone on a loan 75 days late, locked by this morning's sweep."""
    device, loan = phone_on_loan(lender, days_ago=75)
    sweep(loan, today(lender))
    loan.refresh_from_db()
    assert loan.stage == "lock"
    device.refresh_from_db()
    return device, loan


def pay_cash(loan: Loan, amount: Decimal, ref: str = "cash-1") -> PaymentOutcome:
    return payment_record(
        loan_id=loan.pk,
        amount=Money(amount, loan.currency),
        channel="manual",
        provider="manual",
        provider_ref=ref,
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Cash at the shop.",
    )


def _phones_secret(device: Device) -> str:
    """The PIN secret the phone received at enrollment (its enroll answer's)."""
    return offline_terms(device=device, lender=device.lender)["pin_secret"]


def challenge_of(device: Device, counter: int = 0) -> str:
    """The challenge the phone's lock screen shows at ``counter``, by the phone's own code
    (the reference agent's, not the server's)."""
    return phone_challenge(_phones_secret(device), counter)


def pin_of(device: Device, challenge: str) -> str:
    """The PIN the phone accepts for ``challenge``, by the phone's own code."""
    return phone_pin(_phones_secret(device), challenge)
