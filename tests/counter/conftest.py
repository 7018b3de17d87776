from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from tests.accounts.factories import PASSWORD
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for
from tests.retailers.factories import clerk_for, shop_for


@pytest.fixture
def counter(lender_a):
    restriction_policy_version_for(lender_a)
    product = LoanProductFactory(
        lender=lender_a, name="12 months", min_down_payment_percent=Decimal(10)
    )
    shop = shop_for(lender_a)
    clerk = clerk_for(shop)
    client = Client()
    response = client.post(
        reverse("pos:login"), {"username": clerk.user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    return client, clerk, product
