from datetime import datetime
from decimal import Decimal

from apps.collections.models import Loan
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
