"""A loan for the late-fee and due-date tests: signed on SIGNED (first due 10 Feb, Nairobi),
three installments, no interest or fees, three grace days unless the terms say otherwise."""

from datetime import UTC, date, datetime
from decimal import Decimal

from tests.collections.factories import signed_loan

SIGNED = datetime(2026, 1, 10, 9, tzinfo=UTC)  # first due 10 Feb (Nairobi)


def at_local(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def make_loan(lender, **terms):
    base = {
        "installments": 3,
        "interest_rate_percent": Decimal(0),
        "origination_fee_percent": Decimal(0),
        "min_down_payment_percent": Decimal(0),
        "grace_days": 3,
    }
    return signed_loan(lender, price="3100", down="100", signed_at=SIGNED, **{**base, **terms})
