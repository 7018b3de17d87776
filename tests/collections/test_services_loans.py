from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.audit.models import AuditEvent
from apps.collections.errors import (
    DownPaymentTooLarge,
    DownPaymentTooSmall,
    FinancedAmountTooSmall,
    ProductNotAvailable,
)
from apps.collections.models import Installment, Loan
from apps.collections.services import loan_financed_minimum, loan_quote, loan_sign
from apps.core.actor import Actor
from apps.core.errors import IdempotencyConflict, NotAllowed
from apps.core.money import Money, minor_units
from apps.lenders.models import Lender, LoanProduct
from tests.collections.factories import signed_loan
from tests.customers.factories import CustomerFactory, consent_for
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for

pytestmark = pytest.mark.django_db


def kes(amount: str) -> Money:
    return Money(Decimal(amount), "KES")


def test_signing_creates_the_loan_and_its_schedule_in_the_lenders_timezone(lender_a) -> None:
    # 22:30 UTC on 30 Jan is already 31 Jan in Nairobi (UTC+3): the anchor day is the 31st
    loan = signed_loan(
        lender_a,
        price="12000",
        down="2000",
        signed_at=datetime(2026, 1, 30, 22, 30, tzinfo=UTC),
        installments=3,
        origination_fee_percent=Decimal(0),
        interest_rate_percent=Decimal(0),
    )
    assert loan.status == Loan.Status.ACTIVE
    assert loan.start_date == date(2026, 1, 31)
    rows = list(Installment.objects.filter(loan=loan).values_list("due_date", "principal_amount"))
    assert rows == [
        (date(2026, 2, 28), Decimal("3333.33")),
        (date(2026, 3, 31), Decimal("3333.33")),
        (date(2026, 4, 30), Decimal("3333.34")),
    ]
    event = AuditEvent.objects.get(action="collections.loan.signed")
    assert (event.lender_id, event.data["new"]["financed"]) == (lender_a.pk, "10000")


def test_the_loan_keeps_its_terms_when_the_product_changes(lender_a) -> None:
    from apps.collections.selectors import loan_days_overdue

    loan = signed_loan(lender_a, grace_days=3, signed_at=datetime(2026, 1, 10, 9, tzinfo=UTC))
    loan.product.grace_days = 10
    loan.product.save()
    loan.refresh_from_db()
    assert loan.grace_days == 3
    # four days after the first due date (10 Feb): overdue under the loan's 3 grace days
    assert loan_days_overdue(loan=loan, as_of=datetime(2026, 2, 14, 9, tzinfo=UTC)) == 4


def test_quote_is_the_same_computation_as_signing(lender_a) -> None:
    restriction_policy_version_for(lender_a)
    product = LoanProductFactory(lender=lender_a)
    quote = loan_quote(
        product=product,
        device_price=kes("15000"),
        down_payment=kes("3000"),
        start_date=date(2026, 5, 1),
    )
    customer = CustomerFactory(lender=lender_a)
    loan = loan_sign(
        customer=customer,
        consent=consent_for(customer),
        product=product,
        device_price=kes("15000"),
        down_payment=kes("3000"),
        signed_at=datetime(2026, 5, 1, 9, tzinfo=UTC),
        actor=Actor.system(),
    )
    stored = [
        (i.due_date, i.principal_amount, i.interest_amount, i.fee_amount)
        for i in loan.installments.order_by("sequence")
    ]
    assert stored == [
        (line.due_date, line.principal, line.interest, line.fee) for line in quote.schedule.lines
    ]


@pytest.mark.parametrize(
    ("price", "down", "error"),
    [("10000", "999", DownPaymentTooSmall), ("10000", "10000", DownPaymentTooLarge)],
)
def test_down_payment_limits(lender_a, price, down, error) -> None:
    product = LoanProductFactory(lender=lender_a, min_down_payment_percent=Decimal(10))
    with pytest.raises(error):
        loan_quote(
            product=product,
            device_price=kes(price),
            down_payment=kes(down),
            start_date=date(2026, 1, 1),
        )


def weekly_declining(lender, *, rate: Decimal):
    """47 weekly installments, declining-balance interest at ``rate`` a year, no fee."""
    return LoanProductFactory(
        lender=lender,
        installments=47,
        frequency="weekly",
        interest_method="declining",
        interest_rate_percent=rate,
        origination_fee_percent=Decimal(0),
        min_down_payment_percent=Decimal(0),
    )


def test_quote_refuses_and_names_the_smallest_amount_when_an_installment_would_owe_zero(
    lender_a,
) -> None:
    # KES 0.30 over 47 weeks at 30% a year: at most 0.00 an installment but the last
    product = weekly_declining(lender_a, rate=Decimal(30))
    with pytest.raises(FinancedAmountTooSmall) as refused:
        loan_quote(
            product=product,
            device_price=kes("100.30"),
            down_payment=kes("100.00"),
            start_date=date(2026, 1, 1),
        )
    assert refused.value.extra == {"minimum": "0.47", "currency": "KES"}
    assert "The smallest amount it can finance is KES 0.47" in refused.value.message
    at_least = loan_quote(
        product=product,
        device_price=kes("100.47"),
        down_payment=kes("100.00"),
        start_date=date(2026, 1, 1),
    )
    assert all(line.total > 0 for line in at_least.schedule.lines)


def test_quote_spreads_kes_10_over_47_installments_with_none_of_zero_when_rounding_down(
    lender_a,
) -> None:
    # rounded half up, the weekly payment (0.22) paid the balance off in 46 weeks
    product = weekly_declining(lender_a, rate=Decimal(3))
    quote = loan_quote(
        product=product,
        device_price=kes("110"),
        down_payment=kes("100"),
        start_date=date(2026, 1, 1),
    )
    totals = [line.total for line in quote.schedule.lines]
    assert totals[:-1] == [Decimal("0.21")] * 46
    assert totals[-1] == Decimal("0.41")
    assert quote.schedule.total_principal == Decimal(10)


def test_inactive_product_and_foreign_customer_are_refused(lender_a, lender_b) -> None:
    with pytest.raises(ProductNotAvailable):
        signed_loan(lender_a, is_active=False)
    foreign = CustomerFactory(lender=lender_b)
    with pytest.raises(NotAllowed):
        loan_sign(
            customer=foreign,
            consent=consent_for(foreign),
            product=LoanProductFactory(lender=lender_a),
            device_price=kes("100"),
            down_payment=kes("10"),
            actor=Actor.system(),
        )
    assert not Loan.objects.exists()


def test_a_resubmitted_sale_creates_one_loan_and_a_different_one_conflicts(lender_a) -> None:
    restriction_policy_version_for(lender_a)
    product, customer = LoanProductFactory(lender=lender_a), CustomerFactory(lender=lender_a)
    args = {
        "customer": customer,
        "consent": consent_for(customer),
        "product": product,
        "device_price": kes("5000"),
        "down_payment": kes("1000"),
        "actor": Actor.system(),
        "idempotency_key": "pos-123",
    }
    first, second = loan_sign(**args), loan_sign(**args)
    assert first.pk == second.pk
    assert Loan.objects.count() == 1
    with pytest.raises(IdempotencyConflict):
        loan_sign(**{**args, "down_payment": kes("1500")})


def test_status_transitions_live_in_one_table() -> None:
    assert Loan.TRANSITIONS[Loan.Status.CANCELLED] == frozenset()
    assert Loan.Status.ACTIVE in Loan.TRANSITIONS[Loan.Status.DRAFT]
    assert Loan.Status.DRAFT not in Loan.TRANSITIONS[Loan.Status.ACTIVE]


def test_no_loan_without_a_policy_and_the_pinned_version_outlives_policy_changes(lender_a) -> None:
    from apps.collections.errors import RestrictionPolicyMissing
    from apps.lenders.services import default_stages, restriction_policy_version_create

    customer = CustomerFactory(lender=lender_a)
    with pytest.raises(RestrictionPolicyMissing):
        loan_sign(
            customer=customer,
            consent=consent_for(customer),
            product=LoanProductFactory(lender=lender_a),
            device_price=kes("1000"),
            down_payment=kes("200"),
            actor=Actor.system(),
        )
    assert not Loan.objects.exists()
    loan = signed_loan(lender_a)
    pinned = loan.policy_version
    newer = restriction_policy_version_create(
        policy=pinned.policy, stages=default_stages("en", country="KE"), actor=Actor.system()
    )
    loan.refresh_from_db()
    assert (loan.policy_version, newer.version) == (pinned, pinned.version + 1)
    assert signed_loan(lender_a).policy_version == newer


def test_no_loan_without_the_customers_own_consent(lender_a) -> None:
    from apps.collections.errors import ConsentAlreadyUsed, ConsentMissing

    restriction_policy_version_for(lender_a)
    product, customer, other = (
        LoanProductFactory(lender=lender_a),
        CustomerFactory(lender=lender_a),
        CustomerFactory(lender=lender_a),
    )
    sale = {
        "product": product,
        "device_price": kes("5000"),
        "down_payment": kes("1000"),
        "actor": Actor.system(),
    }
    with pytest.raises(ConsentMissing):
        loan_sign(customer=customer, consent=consent_for(other), **sale)
    consent = consent_for(customer)
    loan_sign(customer=customer, consent=consent, **sale)
    with pytest.raises(ConsentAlreadyUsed):
        loan_sign(customer=customer, consent=consent, **sale)
    assert Loan.objects.count() == 1


def test_the_database_refuses_an_active_loan_without_consent(lender_a) -> None:
    from django.db import IntegrityError, transaction

    loan = signed_loan(lender_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        Loan.objects.filter(pk=loan.pk).update(consent=None)


@pytest.mark.parametrize("table", ["collections_loan", "devices_device"])
def test_a_loan_or_a_phone_is_never_deleted_even_in_sql(lender_a, table) -> None:
    """Their stage history, phone states and pushes name them without a foreign key each
    (bulk-written), so the database itself refuses deleting them."""
    from django.db import connection, transaction
    from django.db.utils import ProgrammingError

    from tests.devices.factories import enrolled_phone

    device, _, _ = enrolled_phone(lender_a)
    row = device.loan_id if table == "collections_loan" else device.pk
    with (
        pytest.raises(ProgrammingError, match="Cannot delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row])  # noqa: S608


@settings(max_examples=200, deadline=None)
@given(
    installments=st.integers(1, 104),
    frequency=st.sampled_from(["weekly", "biweekly", "monthly"]),
    method=st.sampled_from(["flat", "declining"]),
    rate=st.decimals(0, 100, places=2),
    fee=st.decimals(0, 50, places=2),
    currency=st.sampled_from(["KES", "JPY", "KWD", "COP"]),
    units=st.one_of(st.integers(1, 500), st.integers(1, 10**8)),
)
def test_a_quote_owes_something_every_installment_or_refuses_naming_the_least_it_can_finance(
    installments, frequency, method, rate, fee, currency, units
) -> None:
    product = LoanProduct(
        lender=Lender(currency=currency),
        installments=installments,
        frequency=frequency,
        interest_method=method,
        interest_rate_percent=rate,
        origination_fee_percent=fee,
        min_down_payment_percent=Decimal(0),
    )
    financed = Decimal(1).scaleb(-minor_units(currency)) * units
    minimum = loan_financed_minimum(product=product)

    def quote_of(amount: Decimal):
        return loan_quote(
            product=product,
            device_price=Money(amount, currency),
            down_payment=Money(Decimal(0), currency),
            start_date=date(2026, 1, 1),
        )

    if financed < minimum.amount:
        with pytest.raises(FinancedAmountTooSmall) as refused:
            quote_of(financed)
        assert refused.value.extra == {"minimum": str(minimum.amount), "currency": currency}
        assert f"{currency} {minimum.amount}" in refused.value.message
        financed = minimum.amount  # the amount it names is accepted
    quote = quote_of(financed)
    lines = quote.schedule.lines
    assert all(line.total > 0 for line in lines)
    assert sum(line.principal for line in lines) == financed
    assert sum(line.total for line in lines) == (
        financed + sum(line.interest for line in lines) + sum(line.fee for line in lines)
    )
