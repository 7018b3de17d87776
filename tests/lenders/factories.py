from decimal import Decimal

import factory

from apps.lenders.models import Lender, LoanProduct, Membership
from tests.accounts.factories import UserFactory


class LenderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lender
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Lender {n}")
    slug = factory.Sequence(lambda n: f"lender-{n}")
    country = "KE"
    currency = "KES"
    timezone = "Africa/Nairobi"
    locale = "en"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    lender = factory.SubFactory(LenderFactory)
    role = Membership.Role.AGENT


class LoanProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoanProduct

    lender = factory.SubFactory(LenderFactory)
    name = factory.Sequence(lambda n: f"Phone plan {n}")
    installments = 12
    frequency = LoanProduct.Frequency.MONTHLY
    min_down_payment_percent = Decimal("10")
    interest_method = LoanProduct.InterestMethod.FLAT
    interest_rate_percent = Decimal("2.5")
    origination_fee_percent = Decimal("1")
    late_fee_type = LoanProduct.LateFeeType.FIXED
    late_fee_value = Decimal("100")
    grace_days = 3
