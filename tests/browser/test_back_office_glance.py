"""The back office as an agent works it, in headless Chromium at 1366x900: the loan's header,
the loan list with its work queues, the portfolio's figures and exports, tomorrow's sweep
forecast and a draft's, actions the rules refuse, and backup codes kept."""

import csv
import io
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.utils import timezone

from apps.collections.models import Loan
from apps.collections.services import loan_stage_sweep, sweep_forecast
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from tests.accounts.factories import PASSWORD
from tests.browser.conftest import admin_log_in, save_screenshot
from tests.collections.factories import noticed, signed_loan
from tests.devices.factories import enrolled_phone, phone_registered, valid_imei

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDE = {"width": 1366, "height": 900}
ALL = {"id_from": 0, "id_to": 10**12}


def late_book(lender, days_ago: list[int]) -> list[Loan]:
    """Loans with enrolled phones signed ``days_ago``, told of the lock, swept this morning."""
    now = timezone.now()
    loans = [enrolled_phone(lender, signed_at=now - timedelta(days=d))[0].loan for d in days_ago]
    for loan in loans:
        noticed(loan)
    loan_stage_sweep(lender_id=lender.pk, business_date=lender_local_date(lender=lender), **ALL)
    return [Loan.objects.get(pk=loan.pk) for loan in loans]


def fits(page) -> bool:
    """Whether the page fits the window's width: no sideways scrolling, of the page or of a
    list's table (the admin scrolls a wide table in its box)."""
    return page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth && "
        "[...document.querySelectorAll('.results')].every(e => e.scrollWidth <= e.clientWidth)"
    )


def test_the_loans_header_tells_an_agent_what_the_phone_really_is(
    live_server, page, lender_a, make_agent
) -> None:
    page.set_viewport_size(WIDE)
    late = late_book(lender_a, [75])[0]
    never = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=50))
    phone_registered(never, imei=valid_imei(), brand="Tecno", model_name="Spark 20")
    Loan.objects.filter(pk=never.pk).update(stage="lock")  # a stage its phone cannot take
    agent = make_agent(lender_a, role=Membership.Role.SUPERVISOR, username="wanjiku")
    url = f"{live_server.url}/admin/collections/loan/{never.pk}/change/"
    admin_log_in(page, url, agent)
    phone = page.locator("#glance-phone")
    assert phone.inner_text() == "Not enrolled: restrictions cannot apply"
    assert phone.evaluate("e => getComputedStyle(e).color") == "rgb(186, 33, 33)"
    assert page.get_attribute("#glance-call", "href") == f"tel:{never.customer.phone}"
    assert not page.locator("text=ConsentRecord object").count()
    # a sale that fell through before the phone enrolled and any payment: cancelled
    assert page.locator("#act-cancel").get_attribute("href").endswith("/act/cancel/")
    assert fits(page)
    save_screenshot(page, "admin-loan-header-not-enrolled")

    page.goto(f"{live_server.url}/admin/collections/loan/{late.pk}/change/")
    page.wait_for_selector("#loan-header")
    assert page.inner_text("#glance-stage") == "Locked"
    assert page.locator("#glance-phone").get_attribute("data-state") in {"normal", "lock"}
    assert int(page.inner_text("#glance-days-late")) > 30
    assert page.inner_text("#glance-next-step")  # the next step and its date
    # stage and phone side by side: the phone has not applied its lock yet, and says so
    assert "not yet applied" in page.inner_text("#glance-phone")
    # the product's terms are folded away until asked for
    product = page.locator("details", has_text="Product settings")
    assert product.count() == 1
    assert not product.evaluate("e => e.open")
    assert not page.locator("text=Interest rate percent").first.is_visible()
    save_screenshot(page, "admin-loan-header")


def test_the_loan_list_sorts_on_lateness_and_opens_a_work_queue(
    live_server, page, lender_a, make_agent
) -> None:
    page.set_viewport_size(WIDE)
    loans = late_book(lender_a, [10, 45, 57, 58, 59, 75])
    agent = make_agent(lender_a, username="kamau")
    admin_log_in(page, f"{live_server.url}/admin/collections/loan/", agent)
    assert fits(page)
    tabs = page.locator(".queue-tabs a")
    assert tabs.count() == 10  # every loan, and the nine queues
    lock_tab = page.locator('.queue-tabs a[data-queue="lock_tomorrow"]')
    count = int(lock_tab.locator(".queue-count").inner_text())
    page.click("th.column-days_late .text a")  # sort by days late
    page.wait_for_url(re.compile(r"o=4"))
    days = [int(d) for d in page.locator("td.field-days_late").all_inner_texts()]
    assert days == sorted(days)
    page.click("th.column-days_late .text a")  # and the other way
    page.wait_for_url(re.compile(r"o=-4"))
    days = [int(d) for d in page.locator("td.field-days_late").all_inner_texts()]
    assert days == sorted(days, reverse=True)
    assert len(days) == len(loans)
    save_screenshot(page, "admin-loan-list")
    lock_tab.click()
    page.wait_for_url(re.compile(r"queue=lock_tomorrow"))
    assert page.locator("#result_list tbody tr").count() == count
    assert page.get_attribute('.queue-tabs a[data-queue="lock_tomorrow"]', "aria-current") == "page"
    assert fits(page)


def test_the_portfolio_links_each_figure_to_its_loans_and_exports_a_table(
    live_server, page, lender_a, make_agent, book
) -> None:
    page.set_viewport_size(WIDE)
    agent = make_agent(lender_a, username="njeri")
    admin_log_in(page, f"{live_server.url}/admin/collections/loan/portfolio/", agent)
    # on a 0-100% scale: PAR 1's bar is as wide as its percentage of the track
    bar = page.locator('#par .bar-row:has([data-par="PAR 1"]) rect')
    percent = float(page.inner_text('[data-par="PAR 1"]').rstrip("%"))
    assert float(bar.get_attribute("width").rstrip("%")) == pytest.approx(percent, abs=0.1)
    save_screenshot(page, "admin-portfolio-links")
    with page.expect_download() as download:
        page.click('#by-shop [data-export="by_shop"]')
    rows = list(csv.reader(io.StringIO(download.value.path().read_text())))
    assert rows[0][:2] == ["shop", "loans"]
    page.click('[data-par="PAR 30"]')
    page.wait_for_url(re.compile(r"late_over=30"))
    today = lender_local_date(lender=lender_a)
    late = {
        loan.reference
        for loan in book.values()
        if loan.installments.filter(paid_at__isnull=True, due_date__lt=today - timedelta(30))
    }
    assert late
    assert set(page.locator("th.field-reference a").all_inner_texts()) == late
    page.go_back()
    page.fill("#id_end", (lender_local_date(lender=lender_a) - timedelta(days=30)).isoformat())
    page.click("#period input[type=submit]")
    page.wait_for_url(re.compile(r"end="))
    assert fits(page)


def test_an_admin_forecasts_tomorrows_sweep_and_a_draft_from_a_policy_version(
    live_server, page, lender_a, make_agent
) -> None:
    page.set_viewport_size(WIDE)
    loans = late_book(lender_a, [20, 44, 58, 59, 60, 75])
    version = loans[0].policy_version
    tomorrow = lender_local_date(lender=lender_a) + timedelta(days=1)
    forecast = sweep_forecast(lender_id=lender_a.pk, business_date=tomorrow)
    assert forecast.locking
    admin = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN, username="otieno")
    url = f"{live_server.url}/admin/lenders/restrictionpolicyversion/{version.pk}/change/"
    admin_log_in(page, url, admin)
    page.click("#sweep-forecast")
    page.wait_for_selector("#what-if-form #version")
    assert page.inner_text('#forecast [data-forecast="locks"]') == str(len(forecast.locking))
    assert page.inner_text('#forecast [data-forecast="total"]') == str(len(forecast.loans))
    lock = version.stages.get(action="lock")
    page.fill(f"#days_{lock.position}", "90")
    page.click("#what-if-form input[type=submit]")
    page.wait_for_selector("#what-if-forecast")
    assert page.inner_text('#what-if-forecast [data-forecast="locks"]') == "0"
    assert fits(page)
    save_screenshot(page, "admin-sweep-forecast")
    # nothing was written: tomorrow's sweep does what the forecast said
    loan_stage_sweep(lender_id=lender_a.pk, business_date=tomorrow, **ALL)
    locked = set(Loan.objects.filter(stage="lock").values_list("pk", flat=True))
    assert {loan.loan_id for loan in forecast.locking} <= locked


def test_an_action_the_rules_refuse_says_why_before_a_reason_is_typed(
    live_server, page, lender_a, make_agent
) -> None:
    page.set_viewport_size(WIDE)
    current, _, _ = enrolled_phone(lender_a)
    agent = make_agent(lender_a, username="akinyi")
    admin_log_in(page, f"{live_server.url}/admin/collections/loan/{current.loan_id}/change/", agent)
    assert page.locator("#act-lock").evaluate("e => e.tagName") == "SPAN"  # not a link
    assert "cannot be locked by hand" in page.inner_text("#why-lock")
    assert page.get_attribute("#act-lock", "aria-disabled") == "true"
    save_screenshot(page, "admin-loan-actions-refused")
    page.goto(f"{live_server.url}/admin/collections/loan/{current.loan_id}/act/lock/")
    assert "Not possible now" in page.inner_text("#action-refused")
    assert not page.locator("#id_reason").count()  # no reason to type in vain


def test_backup_codes_download_as_a_file_and_print(live_server, page, lender_a, make_agent) -> None:
    from tests.browser.test_admin_login import code_from_secret

    page.set_viewport_size(WIDE)
    agent = make_agent(lender_a, username="baraka")
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", agent.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#totp-secret")
    page.fill("#id_otp_token", code_from_secret(page.inner_text("#totp-secret").replace(" ", "")))
    page.click("#otp-setup-form input[type=submit]")
    page.wait_for_selector("#backup-codes li")
    codes = page.locator("#backup-codes li").all_inner_texts()
    with page.expect_download() as download:
        page.click("#download-codes")
    assert download.value.suggested_filename == f"backup-codes-{agent.username}.txt"
    kept = download.value.path().read_text().splitlines()
    assert [line for line in kept if line in codes] == codes
    page.evaluate("window.print = () => { document.body.dataset.printed = 'yes' }")
    page.click("#print-codes")
    assert page.get_attribute("body", "data-printed") == "yes"
    page.emulate_media(media="print")
    assert not page.locator("#download-codes").is_visible()
    assert page.locator("#backup-codes").is_visible()
    page.emulate_media(media="screen")
    save_screenshot(page, "admin-backup-codes")
    assert unquote(page.get_attribute("#download-codes", "href")).count("\n") >= 10
