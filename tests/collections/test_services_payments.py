from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction
from django.db.models import Sum

from apps.audit.models import AuditEvent
from apps.collections.errors import AmountNotInMinorUnits, CurrencyMismatch, ReversalExceedsPayment
from apps.collections.models import Allocation, Installment, Loan, Payment
from apps.collections.selectors import loan_outstanding
from apps.collections.services import payment_record, payment_reverse
from apps.core.actor import Actor
from apps.core.errors import IdempotencyConflict
from apps.core.money import Money
from tests.collections.factories import signed_loan

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def kes(amount: str) -> Money:
    return Money(Decimal(amount), "KES")


def pay(loan, amount: str, ref: str, at: datetime = T0, **kwargs):
    return payment_record(
        loan_id=loan.pk,
        amount=kes(amount),
        channel="provider",
        provider="demo",
        provider_ref=ref,
        received_at=at,
        actor=Actor.system(),
        **kwargs,
    )


def reverse(loan, amount: str, ref: str, payment_ref: str, at: datetime = T0):
    return payment_reverse(
        loan_id=loan.pk,
        kind="chargeback",
        amount=kes(amount),
        provider="demo",
        provider_ref=ref,
        payment_provider_ref=payment_ref,
        received_at=at,
        actor=Actor.system(),
    )


@pytest.fixture
def loan(lender_a):
    # 3 installments of 1000 principal + 150 interest (flat 5% a month of 3000), no fee
    return signed_loan(
        lender_a,
        price="3500",
        down="500",
        installments=3,
        interest_rate_percent=Decimal(5),
        origination_fee_percent=Decimal(0),
        min_down_payment_percent=Decimal(0),
        signed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def paid(loan) -> list[tuple[Decimal, Decimal]]:
    return list(
        loan.installments.order_by("sequence").values_list("interest_paid", "principal_paid")
    )


def test_payment_goes_to_interest_then_principal_oldest_first(loan) -> None:
    pay(loan, "1300", "p1")
    assert paid(loan) == [
        (Decimal(150), Decimal(1000)),
        (Decimal(150), Decimal(0)),
        (Decimal(0), Decimal(0)),
    ]
    assert loan_outstanding(loan=loan).amount == Decimal(2150)
    lines = Allocation.objects.filter(loan=loan).aggregate(total=Sum("amount"))["total"]
    assert lines == Decimal(1300)


def test_overpayment_pays_following_installments_and_the_rest_is_kept(loan) -> None:
    pay(loan, "3500", "p1")
    loan.refresh_from_db()
    assert loan.status == Loan.Status.PAID_OFF
    assert loan_outstanding(loan=loan).amount == 0
    event = AuditEvent.objects.filter(action="collections.payment.allocated").last()
    assert event.data["unapplied"] == {str(Payment.objects.get().pk): "50.000"}
    assert AuditEvent.objects.filter(
        action="collections.loan.paid_off", target_id=str(loan.pk)
    ).exists()


def test_the_same_reference_twice_is_one_payment_and_different_data_conflicts(loan) -> None:
    first = pay(loan, "500", "mp-1")
    second = pay(loan, "500", "mp-1")
    assert (first.created, second.created, first.payment.pk) == (True, False, second.payment.pk)
    assert Payment.objects.count() == 1
    with pytest.raises(IdempotencyConflict):
        pay(loan, "600", "mp-1")


def test_bad_amounts_are_refused_and_nothing_is_stored(loan) -> None:
    with pytest.raises(CurrencyMismatch):
        payment_record(
            loan_id=loan.pk,
            amount=Money(Decimal(5), "USD"),
            channel="manual",
            provider="manual",
            provider_ref="x",
            received_at=T0,
            actor=Actor.system(),
        )
    with pytest.raises(AmountNotInMinorUnits):
        pay(loan, "10.005", "y")
    with pytest.raises(AmountNotInMinorUnits):
        pay(loan, "0", "z")
    assert not Payment.objects.exists()


def test_a_reversal_takes_the_money_back_and_reopens_a_paid_off_loan(loan) -> None:
    pay(loan, "3450", "p1")
    loan.refresh_from_db()
    assert loan.status == Loan.Status.PAID_OFF
    reverse(loan, "3450", "cb-1", "p1", at=T0 + timedelta(days=1))
    loan.refresh_from_db()
    assert loan.status == Loan.Status.ACTIVE
    assert loan_outstanding(loan=loan).amount == Decimal(3450)
    debits = Allocation.objects.filter(loan=loan, direction="debit").aggregate(t=Sum("amount"))["t"]
    assert debits == Decimal(3450)  # the original lines stay; reversing lines are added


def test_a_refund_arriving_before_its_payment_waits_for_it(loan) -> None:
    reverse(loan, "200", "rf-1", "p1")
    assert loan_outstanding(loan=loan).amount == Decimal(3450)
    pay(loan, "1050", "p1")
    assert loan_outstanding(loan=loan).amount == Decimal(3450 - 850)


def test_reversals_cannot_exceed_their_payment(loan) -> None:
    pay(loan, "500", "p1")
    reverse(loan, "300", "cb-1", "p1")
    with pytest.raises(ReversalExceedsPayment):
        reverse(loan, "201", "cb-2", "p1")


def test_any_arrival_order_ends_in_the_same_balances(lender_a) -> None:
    events = [
        ("pay", "700", "p1", T0),
        ("pay", "900", "p2", T0 + timedelta(days=3)),
        ("rev", "300", "r1", "p1"),
        ("pay", "400", "p3", T0 + timedelta(days=1)),
    ]
    outcomes = []
    for n, order in enumerate(
        (events, list(reversed(events)), [events[2], events[0], events[3], events[1]])
    ):
        loan = signed_loan(
            lender_a,
            price="3500",
            down="500",
            installments=3,
            origination_fee_percent=Decimal(0),
            signed_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for kind, amount, ref, extra in order:  # references are unique per lender: prefix by loan
            if kind == "pay":
                pay(loan, amount, f"{n}-{ref}", at=extra)
            else:
                reverse(loan, amount, f"{n}-{ref}", f"{n}-{extra}")
        outcomes.append(
            list(
                Installment.objects.filter(loan=loan)
                .order_by("sequence")
                .values_list("late_fee_paid", "fee_paid", "interest_paid", "principal_paid")
            )
        )
    assert outcomes[0] == outcomes[1] == outcomes[2]


def test_ledger_rows_are_append_only(loan) -> None:
    pay(loan, "100", "p1")
    for model in (Payment, Allocation):
        with pytest.raises(DatabaseError), transaction.atomic():
            model.objects.update(amount=Decimal(1))
        with pytest.raises(DatabaseError), transaction.atomic():
            model.objects.all().delete()
