import factory

from apps.customers.models import Customer
from tests.lenders.factories import LenderFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    lender = factory.SubFactory(LenderFactory)
    full_name = factory.Sequence(lambda n: f"Customer {n}")
    phone = factory.Sequence(lambda n: f"+2547{n:08d}")
    national_id = factory.Sequence(lambda n: f"{20000000 + n}")
