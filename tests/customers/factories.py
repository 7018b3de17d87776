import factory

from apps.customers.models import ConsentRecord, Customer
from tests.lenders.factories import LenderFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    lender = factory.SubFactory(LenderFactory)
    full_name = factory.Sequence(lambda n: f"Customer {n}")
    phone = factory.Sequence(lambda n: f"+2547{n:08d}")
    national_id = factory.Sequence(lambda n: f"{20000000 + n}")


def consent_for(customer: Customer) -> ConsentRecord:
    """Recorded consent for ``customer`` (demo-seed method: no SMS round trip needed)."""
    from apps.core.actor import Actor
    from apps.customers.services import consent_record_demo_seed
    from tests.retailers.factories import clerk_for, shop_for

    shop = shop_for(customer.lender)
    clerk = clerk_for(shop)
    return consent_record_demo_seed(
        customer=customer,
        text=f"Terms for {customer.full_name}",
        text_version="test",
        clerk_id=clerk.user_id,
        shop_id=shop.pk,
        actor=Actor.system(),
    )
