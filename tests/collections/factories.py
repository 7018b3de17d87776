from datetime import datetime
from decimal import Decimal

from apps.collections.models import Loan, PaymentAttempt
from apps.collections.services import loan_sign
from apps.core.actor import Actor
from apps.core.money import Money
from apps.lenders.models import Lender, LoanProduct
from tests.customers.factories import CustomerFactory, consent_for
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for


def signed_loan(
    lender: Lender,
    *,
    price: str = "12000",
    down: str = "2000",
    signed_at: datetime | None = None,
    product: LoanProduct | None = None,
    **product_terms: object,
) -> Loan:
    """A loan signed through the real service (schedule, audit and all)."""
    restriction_policy_version_for(lender)
    product = product or LoanProductFactory(lender=lender, **product_terms)
    customer = CustomerFactory(lender=lender)
    return loan_sign(
        customer=customer,
        consent=consent_for(customer),
        product=product,
        device_price=Money(Decimal(price), lender.currency),
        down_payment=Money(Decimal(down), lender.currency),
        signed_at=signed_at,
        actor=Actor.system(),
    )


def noticed(loan: Loan, *, stage: str = "lock", sequence: int | None = None) -> None:
    """The customer was told ``stage`` was coming (a notice naming it and its date, accepted by
    the SMS provider on the due date of the oldest unpaid installment, or of installment
    ``sequence``), so a stage that blocks apps or locks may apply once the country's notice
    days have passed since, while that installment is the oldest unpaid."""
    from datetime import timedelta

    from apps.lenders.selectors import lender_day_start
    from apps.notifications.models import Notification

    unpaid = loan.installments.filter(paid_at__isnull=True).order_by("due_date")
    oldest = unpaid.first() if sequence is None else loan.installments.get(sequence=sequence)
    told = lender_day_start(lender=loan.lender, day=oldest.due_date) + timedelta(hours=12)
    notice = Notification.objects.create(
        lender_id=loan.lender_id,
        customer_id=loan.customer_id,
        loan=loan,
        kind="notice",
        status="sms",
        locale="en",
        body=f"The phone may be restricted ({stage}).",
        dedupe_key=f"test-notice:{loan.pk}:{stage}:{oldest.sequence}",
        scheduled_for=told,
        sent_at=told,
        announces_stage=stage,
        announces_on=oldest.due_date + timedelta(days=1),
    )
    Notification.objects.filter(pk=notice.pk).update(created_at=told)


def started_attempt(loan: Loan, **fields: object) -> PaymentAttempt:
    """A payment started on ``loan`` (10.00 by M-Pesa, by the customer, not yet sent to the
    provider), unsaved; ``fields`` set the rest."""
    values: dict[str, object] = {
        "provider": "mpesa",
        "amount": Decimal("10.00"),
        "currency": loan.currency,
        "started_by": "customer",
        **fields,
    }
    return PaymentAttempt(lender_id=loan.lender_id, loan=loan, **values)
