import factory

from apps.lenders.models import Lender
from apps.retailers.models import Clerk, Retailer, Shop
from tests.accounts.factories import UserFactory


class RetailerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Retailer

    name = factory.Sequence(lambda n: f"Phone shop {n}")


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop
        skip_postgeneration_save = True

    retailer = factory.SubFactory(RetailerFactory)
    name = factory.Sequence(lambda n: f"Counter {n}")
    address = "Moi Avenue 1, Nairobi"
    timezone = "Africa/Nairobi"

    @factory.post_generation
    def lenders(obj, create, extracted, **kwargs):  # noqa: N805  (factory_boy hook)
        if create and extracted:
            obj.lenders.set(extracted)


def shop_for(lender: Lender) -> Shop:
    return Shop.objects.filter(lenders=lender).first() or ShopFactory(lenders=[lender])


def clerk_for(shop: Shop) -> Clerk:
    existing = Clerk.objects.filter(shop=shop).first()
    return existing or Clerk.objects.create(user=UserFactory(is_staff=False), shop=shop)
