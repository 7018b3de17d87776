"""The back office shows amounts in their currency's minor unit, never as stored (3 places)."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.collections.factories import signed_loan, started_attempt

pytestmark = pytest.mark.django_db


def test_a_kenyan_loans_page_shows_its_amounts_with_two_decimals(
    lender_a, make_agent, verified_client
) -> None:
    assert lender_a.currency == "KES"
    loan = signed_loan(lender_a, price="17000", down="2000")
    assert loan.financed_amount == Decimal("15000.000")
    client = verified_client(make_agent(lender_a))

    page = client.get(reverse("admin:collections_loan_change", args=[loan.pk])).content.decode()

    assert "15,000.00" in page  # the financed amount
    assert "17,000.00" in page  # the device's price
    assert "15000.000" not in page
    assert "Outstanding KES 19,650.00; next due on " in page  # the balance line
    shown = re.findall(r'<(?:div class="readonly"|td class="field-[a-z_]+")>([^<]*)<', page)
    assert any("19,650.00" in text for text in shown)
    assert not [t for t in shown if re.search(r"\d\.\d{3}\b", t)]  # the schedule's included


def test_a_kenyan_changelist_shows_amounts_with_two_decimals(
    lender_a, make_agent, verified_client
) -> None:
    loan = signed_loan(lender_a)
    started_attempt(loan, amount=Decimal("15000")).save()
    client = verified_client(make_agent(lender_a))

    page = client.get(reverse("admin:collections_paymentattempt_changelist")).content.decode()

    assert "15,000.00" in page
    assert "15000.000" not in page
