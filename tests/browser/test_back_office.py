"""The back office in headless Chromium: an agent with two factors records a customer's promise
on the loan's page and the next morning's sweep respects it; the portfolio dashboard."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.collections.models import Loan, LoanPause
from apps.collections.services import loan_stage_sweep
from apps.lenders.selectors import lender_local_date
from tests.browser.conftest import admin_log_in, save_screenshot
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_records_a_promise_and_tomorrows_sweep_respects_it(
    live_server, page, lender_a, make_agent
) -> None:
    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=50))
    noticed(device.loan)  # told of the lock ahead
    today = lender_local_date(lender=lender_a)
    loan_stage_sweep(lender_id=lender_a.pk, business_date=today, id_from=0, id_to=10**12)
    loan = Loan.objects.get(pk=device.loan_id)
    assert loan.stage == "block_apps"
    agent = make_agent(lender_a, username="achieng")
    page.set_viewport_size({"width": 1366, "height": 900})
    admin_log_in(page, f"{live_server.url}/admin/collections/loan/{loan.pk}/change/", agent)
    page.click("#act-promise")
    page.wait_for_url("**/act/promise/")
    page.fill("#id_until", (today + timedelta(days=5)).isoformat())
    page.fill("#id_reason", "Salary on Friday; she will pay at the shop.")
    page.click("#loan-action-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/collections/loan/{loan.pk}/change/")
    page.wait_for_selector(".messagelist")
    assert "Done: Record a promise to pay." in page.inner_text(".messagelist")
    save_screenshot(page, "admin-loan-workbench")
    pause = LoanPause.objects.get(loan=loan)
    assert (pause.kind, pause.status) == ("promise", "active")
    loan.refresh_from_db()
    assert loan.stage == "reminder"
    for day in (1, 2, 3):  # mornings while the promise holds: the sweep raises nothing
        loan_stage_sweep(
            lender_id=lender_a.pk,
            business_date=today + timedelta(days=day),
            id_from=0,
            id_to=10**12,
        )
        loan.refresh_from_db()
        assert loan.stage == "reminder"


def test_the_portfolio_dashboard_draws_the_lenders_figures(
    live_server, page, lender_a, make_agent, book
) -> None:
    page.set_viewport_size({"width": 1366, "height": 900})
    admin_log_in(
        page, f"{live_server.url}/admin/collections/loan/", make_agent(lender_a, username="otieno")
    )
    page.click("#portfolio")
    page.wait_for_url("**/admin/collections/loan/portfolio/")
    page.wait_for_selector("#par")
    assert page.inner_text('[data-par="PAR 1"]').endswith("%")
    assert page.inner_text('[data-unlock="p50"]') == "60.0"
    assert page.locator("#stages .bar-row").count() == 6
    save_screenshot(page, "admin-portfolio")
