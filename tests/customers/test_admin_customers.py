"""The back office shows customers and has no path that edits one."""

import pytest

from apps.customers.models import Customer
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_the_customer_admin_cannot_change_a_number_when_asked_by_anyone(
    lender_a, make_agent, operator, rf
) -> None:
    """The back office shows customers; it has no path that edits one (the number changes
    only through customer_phone_change, which applies the same rule)."""
    from django.contrib import admin

    from apps.lenders.models import Membership

    customer = CustomerFactory(lender=lender_a)
    model_admin = admin.site._registry[Customer]
    for user in (operator, make_agent(lender_a, role=Membership.Role.LENDER_ADMIN, is_staff=True)):
        request = rf.get("/")
        request.user = user
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, customer)
