"""The portfolio dashboard page: a lender's own figures, none for staff without a lender, and
an operator picks the lender."""

import pytest
from django.urls import reverse

from apps.collections import portfolio
from apps.lenders.selectors import lender_local_date

pytestmark = pytest.mark.django_db


def test_the_dashboard_page_shows_the_lenders_own_figures(
    lender_a, lender_b, make_agent, verified_client, book
) -> None:
    page = verified_client(make_agent(lender_a)).get(reverse("admin:collections_loan_portfolio"))
    assert page.status_code == 200
    html = page.content.decode()
    ratio = portfolio.par(lender_id=lender_a.pk, on=lender_local_date(lender=lender_a)).ratio(60)
    assert f'data-par="PAR 60">{float(ratio) * 100:.1f}%' in html
    assert 'data-unlock="p50">60.0' in html
    other = (
        verified_client(make_agent(lender_b))
        .get(reverse("admin:collections_loan_portfolio"))
        .content.decode()
    )
    assert "Portfolio of Lender B" in other
    assert 'data-stage="lock">0<' in other


def test_a_staff_user_without_a_lender_sees_no_portfolio_and_an_operator_picks_one(
    lender_a, lender_b, verified_client, operator, book
) -> None:
    from tests.accounts.factories import UserFactory

    url = reverse("admin:collections_loan_portfolio")
    orphan = verified_client(UserFactory())  # staff, two factors, no membership any more
    assert orphan.get(url, {"lender": lender_a.pk}).status_code == 403
    picked = verified_client(operator).get(url, {"lender": lender_b.pk}).content.decode()
    assert "Portfolio of Lender B" in picked
