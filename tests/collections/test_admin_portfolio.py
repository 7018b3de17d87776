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
    par60 = html.split('data-par="PAR 60"')[1].split("</a>")[0]
    assert par60.endswith(f">{float(ratio) * 100:.1f}%")
    assert "late_over=60" in par60  # the figure links to the loans behind it
    assert 'data-unlock="p50">60.0' in html
    other = (
        verified_client(make_agent(lender_b))
        .get(reverse("admin:collections_loan_portfolio"))
        .content.decode()
    )
    assert "Portfolio of Lender B" in other
    assert other.split('data-stage="lock"')[1].split("</a>")[0].endswith(">0")


def test_a_staff_user_without_a_lender_sees_no_portfolio_and_an_operator_picks_one(
    lender_a, lender_b, verified_client, operator, book
) -> None:
    from tests.accounts.factories import UserFactory

    url = reverse("admin:collections_loan_portfolio")
    orphan = verified_client(UserFactory())  # staff, two factors, no membership any more
    assert orphan.get(url, {"lender": lender_a.pk}).status_code == 403
    picked = verified_client(operator).get(url, {"lender": lender_b.pk}).content.decode()
    assert "Portfolio of Lender B" in picked


def test_each_figure_links_to_the_loans_behind_it(
    lender_a, make_agent, verified_client, book
) -> None:
    """A figure's link opens the loan list filtered to the loans it counts: as many as it
    says, for the stages and the PAR (its rule, days from the due date)."""
    import re

    from apps.collections.models import Loan

    client = verified_client(make_agent(lender_a))
    html = client.get(reverse("admin:collections_loan_portfolio")).content.decode()
    today = lender_local_date(lender=lender_a)
    figures = portfolio.par(lender_id=lender_a.pk, on=today)
    for days in (1, 30, 60):
        link = re.search(rf'href="([^"]*late_over={days})"', html).group(1).replace("&amp;", "&")
        listed = client.get(link).content.decode()
        shown = set(re.findall(r">(SC-[A-Z0-9]+)<", listed))
        late = {
            loan.reference
            for loan in Loan.objects.filter(lender=lender_a, status="active")
            if any(
                i.paid_at is None and (today - i.due_date).days > days
                for i in loan.installments.all()
            )
        }
        assert shown == late, days
        assert bool(late) == (figures.at_risk[days] > 0)
    lock = re.search(r'data-stage="lock" href="([^"]*)"', html).group(1).replace("&amp;", "&")
    listed = client.get(lock).content.decode()
    assert set(re.findall(r">(SC-[A-Z0-9]+)<", listed)) == {
        loan.reference for loan in Loan.objects.filter(lender=lender_a, stage="lock")
    }


def test_each_table_exports_to_csv_and_a_formula_stays_text(
    lender_a, make_agent, verified_client, book
) -> None:
    import csv
    import io

    from apps.collections.models import Loan
    from tests.retailers.factories import ShopFactory

    shop = ShopFactory(name='=HYPERLINK("http://x","y")')
    Loan.objects.filter(pk=book["C"].pk).update(shop=shop)
    client = verified_client(make_agent(lender_a))
    url = reverse("admin:collections_loan_portfolio")
    for table in ("stages", "par", "cures", "rolls", "by_shop", "by_month"):
        response = client.get(url, {"export": table})
        assert response["Content-Type"].startswith("text/csv"), table
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert len(rows) > 1, table
    shops = list(csv.reader(io.StringIO(client.get(url, {"export": "by_shop"}).content.decode())))
    assert sorted(row[0] for row in shops[1:]) == ['\'=HYPERLINK("http://x","y")', "(no shop)"]
    assert client.get(url, {"export": "nothing"}).status_code == 404


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+254700", "'+254700"),
        ("-3", "'-3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Nairobi CBD", "Nairobi CBD"),
        ("a=b", "a=b"),
        (-3, -3),
    ],
)
def test_a_csv_cell_that_a_spreadsheet_would_run_stays_text(cell, written) -> None:
    assert portfolio.csv_cell(cell) == written


def test_the_period_sets_the_date_of_the_figures_and_the_roll_months(
    lender_a, make_agent, verified_client, book
) -> None:
    from datetime import timedelta

    client = verified_client(make_agent(lender_a))
    today = lender_local_date(lender=lender_a)
    start, end = today - timedelta(days=200), today - timedelta(days=20)
    response = client.get(
        reverse("admin:collections_loan_portfolio"),
        {"start": start.isoformat(), "end": end.isoformat()},
    )
    assert response.context["today"] == end
    assert response.context["par"] == portfolio.par(lender_id=lender_a.pk, on=end)
    ends = portfolio.month_ends_between(start=start, end=end)
    assert [r.end for r in response.context["rolls"]] == ends[1:]
    assert all(start <= e <= end for e in ends)
    assert len(ends) >= 5
