"""The webhook's hot path: one-query lock by reference, idempotency by the unique
constraint, and a bounded number of round trips."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import transaction

from apps.collections.errors import CurrencyMismatch, LoanNotFound
from apps.collections.locks import (
    installment_lock_for_loan,
    installment_lock_list_for_loan,
    loan_lock,
    loan_lock_by_reference,
    loan_lock_with_row,
)
from apps.collections.models import Allocation, Payment, PaymentAttempt
from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.errors import IdempotencyConflict
from apps.core.money import Money
from tests.collections.factories import signed_loan, started_attempt
from tests.collections.webhooks import deliver, event

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 10, 9, tzinfo=UTC)


@pytest.fixture
def loan(lender_a):
    return signed_loan(lender_a, price="3500", down="500", installments=3)


def pay(loan, amount: Money, ref: str):
    return payment_record(
        loan_id=loan.pk,
        amount=amount,
        channel="provider",
        provider="demo",
        provider_ref=ref,
        received_at=T0,
        actor=Actor.system(),
    )


def test_locks_match_the_querysets_when_raw(lender_a, lender_b, loan) -> None:
    other = signed_loan(lender_b, price="3500", down="500", installments=3)
    with transaction.atomic():
        assert loan_lock_by_reference(lender_id=lender_a.pk, reference=loan.reference).pk == (
            loan_lock(loan_id=loan.pk).pk
        )
        assert [i.pk for i in installment_lock_list_for_loan(loan=loan)] == [
            i.pk for i in installment_lock_for_loan(loan=loan)
        ]
        with pytest.raises(LoanNotFound):
            loan_lock_by_reference(lender_id=lender_a.pk, reference=other.reference)


def test_a_taken_reference_is_answered_before_a_refusal_when_the_currency_differs(loan) -> None:
    first = pay(loan, Money(Decimal(100), "KES"), "MP-1")
    assert pay(loan, Money(Decimal(100), "KES"), "MP-1").payment.pk == first.payment.pk
    with pytest.raises(IdempotencyConflict):  # not CurrencyMismatch: the reference is taken
        pay(loan, Money(Decimal(100), "USD"), "MP-1")
    with pytest.raises(CurrencyMismatch):
        pay(loan, Money(Decimal(100), "USD"), "MP-2")
    assert Payment.objects.count() == 1


def test_a_taken_reference_on_another_loan_is_a_conflict_when_inserted(lender_a, loan) -> None:
    other = signed_loan(lender_a, price="3500", down="500", installments=3)
    pay(loan, Money(Decimal(100), "KES"), "MP-1")
    with pytest.raises(IdempotencyConflict):
        pay(other, Money(Decimal(100), "KES"), "MP-1")
    assert not Allocation.objects.filter(loan=other).exists()


def test_a_payment_webhook_takes_at_most_14_queries_when_applied(
    client, lender_a, loan, django_assert_max_num_queries
) -> None:
    deliver(client, lender_a, event(loan.reference, "10.00", "MP-0"))  # warm caches
    # lender, event check, savepoint, loan, installments, position, payment,
    # allocation, installments update, chain head, events + head, event, the receipt task's
    # outbox row, release
    with django_assert_max_num_queries(14):
        response = deliver(client, lender_a, event(loan.reference, "250.00", "MP-1"))
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
def test_the_raw_locks_hold_the_rows_against_another_connection(lender_a) -> None:
    import threading

    from django.db import OperationalError, connection

    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    other = signed_loan(lender_a, price="3500", down="500", installments=3)
    attempt = started_attempt(other)
    attempt.save()
    outcomes: list[str] = []

    def probe(sql: str, row: int) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [row])
            outcomes.append("free")
        except OperationalError:
            outcomes.append("locked")
        finally:
            connection.close()

    with transaction.atomic():
        loan_lock_by_reference(lender_id=lender_a.pk, reference=loan.reference)
        installment_lock_list_for_loan(loan=loan)
        loan_lock_with_row(PaymentAttempt, pk=attempt.pk, lender_id=lender_a.pk)
        for sql, row in (
            ("SELECT 1 FROM collections_loan WHERE id = %s FOR UPDATE NOWAIT", loan.pk),
            ("SELECT 1 FROM collections_installment WHERE loan_id = %s FOR UPDATE NOWAIT", loan.pk),
            ("SELECT 1 FROM collections_loan WHERE id = %s FOR UPDATE NOWAIT", other.pk),
            (
                "SELECT 1 FROM collections_paymentattempt WHERE id = %s FOR UPDATE NOWAIT",
                attempt.pk,
            ),
        ):
            thread = threading.Thread(target=probe, args=(sql, row))
            thread.start()
            thread.join()
    assert outcomes == ["locked"] * 4
