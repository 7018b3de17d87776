import pytest
from django.core.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.test import APIRequestFactory

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.lenders.errors import LenderSlugTaken, UserAlreadyMember
from apps.lenders.models import Membership
from apps.lenders.services import agent_create, lender_create, membership_create
from apps.lenders.tenancy import LenderObjectPermission

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Acme Credit",
    "slug": "acme",
    "country": "PH",
    "currency": "PHP",
    "timezone": "Asia/Manila",
    "locale": "en",
}


def test_lender_create_records_the_event_on_its_own_chain() -> None:
    lender = lender_create(**VALID, actor=Actor.system())
    event = AuditEvent.objects.get(action="lenders.lender.created")
    assert (event.lender_id, event.seq, event.data["new"]["currency"]) == (lender.pk, 1, "PHP")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("country", "XX"),
        ("country", "ph"),
        ("currency", "ABC"),
        ("timezone", "Mars/Olympus"),
        ("locale", "fr"),
    ],
)
def test_lender_create_refuses_bad_values_and_stores_nothing(field, value) -> None:
    with pytest.raises(ValidationError) as excinfo:
        lender_create(**{**VALID, field: value}, actor=Actor.system())
    assert field in excinfo.value.message_dict
    assert not AuditEvent.objects.exists()


def test_duplicate_slug_is_a_clear_conflict() -> None:
    lender_create(**VALID, actor=Actor.system())
    with pytest.raises(LenderSlugTaken):
        lender_create(**{**VALID, "name": "Other"}, actor=Actor.system())
    assert AuditEvent.objects.filter(action="lenders.lender.created").count() == 1


def test_agent_create_makes_staff_member_and_refuses_weak_passwords(lender_a) -> None:
    with pytest.raises(ValidationError):
        agent_create(
            lender=lender_a,
            username="weak",
            email="",
            password="12345",
            role=Membership.Role.AGENT,
            actor=Actor.system(),
        )
    user = agent_create(
        lender=lender_a,
        username="ann",
        email="ann@example.test",
        password="a-long-enough-passphrase",
        role=Membership.Role.SUPERVISOR,
        actor=Actor.system(),
    )
    assert (user.is_staff, user.is_superuser, user.membership.role) == (True, False, "supervisor")
    with pytest.raises(UserAlreadyMember):
        membership_create(
            user=user, lender=lender_a, role=Membership.Role.AGENT, actor=Actor.system()
        )


def test_drf_permission_checks_each_object_against_the_callers_lender(
    lender_a, lender_b, make_agent, operator
) -> None:
    permission: BasePermission = LenderObjectPermission()
    request = APIRequestFactory().get("/")
    request.user = make_agent(lender_a)
    assert not permission.has_permission(request, None)  # no second factor yet
    request.user.is_verified = lambda: True
    assert permission.has_permission(request, None)
    assert permission.has_object_permission(request, None, lender_a)
    assert not permission.has_object_permission(request, None, lender_b)
    request.user = operator
    operator.is_verified = lambda: True
    assert permission.has_object_permission(request, None, lender_b)
    from tests.accounts.factories import UserFactory

    request.user = UserFactory()
    request.user.is_verified = lambda: True
    assert not permission.has_permission(request, None)  # verified, but of no lender
