import factory

from apps.lenders.models import Lender, Membership
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
