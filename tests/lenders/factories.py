from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import factory

from apps.core.actor import Actor
from apps.lenders.models import (
    ApiKey,
    Lender,
    LoanProduct,
    Membership,
    RestrictionPolicy,
    RestrictionPolicyVersion,
)
from apps.lenders.selectors import restriction_policy_version_in_force
from apps.lenders.services import api_key_create, default_stages, restriction_policy_create
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
    # no late fee unless a test asks for one: a payment received once an installment is late
    # pays its fee first (tests/collections/test_services_late_fees.py), and most tests
    # pay what is due without one
    late_fee_type = LoanProduct.LateFeeType.NONE
    late_fee_value = Decimal("0")
    grace_days = 3


class RestrictionPolicyFactory(factory.django.DjangoModelFactory):
    """A bare policy row with no versions; for constraint tests. Use the helper below
    for a policy with a validated version."""

    class Meta:
        model = RestrictionPolicy

    lender = factory.SubFactory(LenderFactory)
    name = factory.Sequence(lambda n: f"Policy {n}")
    is_active = False


def restriction_policy_version_for(lender: Lender) -> RestrictionPolicyVersion:
    """The lender's version in force, created through the real service with the
    standard ladder (fitted to the lender's country) when there is none."""
    version = restriction_policy_version_in_force(lender_id=lender.pk)
    if version is not None:
        return version
    return restriction_policy_create(
        lender=lender,
        name="Standard",
        stages=default_stages(lender.locale, country=lender.country),
        actor=Actor.system(),
    )


def message_text_for(lender: Lender, kind: str, language: str, text: str, user=None):
    """``lender``'s new version of a message text, saved through the service."""
    from apps.lenders.services import message_template_save

    return message_template_save(
        lender_id=lender.pk,
        kind=kind,
        language=language,
        text=text,
        user=user,
        actor=Actor.agent(user) if user else Actor.system(),
    )


ALL_SCOPES = tuple(ApiKey.Scope.values)


def api_key_for(
    lender: Lender,
    *,
    scopes: Sequence[str] = ALL_SCOPES,
    expires_at: datetime | None = None,
    name: str = "Loan system",
) -> tuple[ApiKey, str]:
    """A key of ``lender`` made by the real service, and the key itself (the only time it
    is known): send it as ``Authorization: Api-Key <key>`` (``api_key_header``)."""
    return api_key_create(
        lender=lender, name=name, scopes=scopes, expires_at=expires_at, actor=Actor.system()
    )


class ApiKeyFactory:
    """``ApiKeyFactory(lender=..., scopes=...)`` is ``(row, key)``: the row and the key itself,
    made by ``api_key_create`` (a fresh lender when none is given)."""

    def __new__(  # type: ignore[misc]  # a factory function with a factory's name
        cls, *, lender: Lender | None = None, **kwargs: Any
    ) -> tuple[ApiKey, str]:
        return api_key_for(lender or LenderFactory(), **kwargs)


def api_key_header(key: str) -> dict[str, str]:
    """The Django test client's keyword for the header: ``client.get(url, **api_key_header(k))``."""
    return {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
