"""Loan products in the back office: a lender's admin adds them for their own lender only,
agents cannot, and the page names the smallest amount the terms can finance."""

from decimal import Decimal

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.lenders.models import LoanProduct, Membership
from tests.lenders.factories import LoanProductFactory

pytestmark = pytest.mark.django_db


def test_lender_admin_adds_a_product_in_the_admin_for_their_lender_only(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    form = {
        "name": "Weekly 26",
        "installments": 26,
        "frequency": "weekly",
        "min_down_payment_percent": "20",
        "interest_method": "declining",
        "interest_rate_percent": "60",
        "origination_fee_percent": "0",
        "late_fee_type": "percent",
        "late_fee_value": "5",
        "late_fee_cap": "200",
        "grace_days": "2",
        "is_active": "on",
    }
    url = reverse("admin:lenders_loanproduct_add")
    response = client.post(url, {**form, "lender": lender_b.pk})
    assert response.status_code == 200  # lender B is not a valid choice
    assert not LoanProduct.objects.exists()
    response = client.post(url, {**form, "lender": lender_a.pk})
    assert response.status_code == 302
    assert LoanProduct.objects.get().lender == lender_a
    assert AuditEvent.objects.filter(
        action="lenders.loan_product.created", lender=lender_a
    ).exists()


def test_agents_cannot_change_products(lender_a, make_agent, verified_client) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.AGENT))
    assert client.get(reverse("admin:lenders_loanproduct_add")).status_code == 403


def test_the_product_page_names_the_smallest_amount_its_terms_can_finance(
    lender_a, make_agent, verified_client
) -> None:
    weekly = LoanProductFactory(
        lender=lender_a,
        installments=47,
        frequency="weekly",
        interest_method="declining",
        interest_rate_percent=Decimal(30),
        origination_fee_percent=Decimal(0),
    )
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    page = client.get(reverse("admin:lenders_loanproduct_change", args=[weekly.pk]))
    assert page.status_code == 200
    assert "Smallest amount financed" in page.content.decode()
    assert "KES 0.47" in page.content.decode()  # less would leave an installment of zero
    assert client.get(reverse("admin:lenders_loanproduct_add")).status_code == 200
