"""A lender's admin rewrites the payment receipt in the back office, in headless Chromium: the
preview follows their typing (the server renders and counts it), an unknown placeholder is
named before they save, and the saved text is the new version in force."""

import pytest
from django.urls import reverse

from apps.lenders.models import Membership, MessageTemplate
from tests.browser.conftest import admin_log_in, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PREVIEW = "#preview-text"


def wait_for_preview(page, starts_with: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector).textContent.startsWith(text)",
        arg=[PREVIEW, starts_with],
    )


def test_the_preview_follows_the_admins_typing_and_the_saved_text_is_in_force(
    live_server, page, lender_a, make_agent
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    admin = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN, username="wanjiru")
    changelist = f"{live_server.url}{reverse('admin:lenders_messagetemplate_changelist')}"
    admin_log_in(page, changelist, admin)
    page.click('[data-text="receipt-en"] a')
    page.wait_for_url("**/receipt/en/edit/")
    assert page.input_value("#id_text").startswith("We received {amount}. Thank you.")

    page.fill("#id_text", "{lender}: we got {amount}, thank you! Still to pay: {balance}.")
    wait_for_preview(page, "Lender A: we got KES 1,250.00, thank you!")
    assert page.inner_text('[data-count="encoding"]') == "GSM-7"
    assert page.inner_text('[data-count="segments"]') == "1"
    assert page.inner_text("#preview-errors") == ""

    page.fill("#id_text", "{lender}：已收到 {amount}，谢谢！")  # noqa: RUF001  (Chinese punctuation)
    wait_for_preview(page, "Lender A：已收到 KES 1,250.00")  # noqa: RUF001  (Chinese punctuation)
    assert page.inner_text('[data-count="encoding"]') == "UCS-2"

    page.fill("#id_text", "Paid {amount}. Pay the rest at {pay_link}")
    wait_for_preview(page, "Paid KES 1,250.00. Pay the rest at {pay_link}")
    assert "Unknown placeholder {pay_link}" in page.inner_text("#preview-errors")

    page.fill("#id_text", "{lender}: we got {amount} [€]. Left: {balance}. {offline_note}")
    wait_for_preview(page, "Lender A: we got KES 1,250.00 [€]. Left: KES 8,750.00.")
    assert page.inner_text("#preview-errors") == ""
    page.click("#message-text-form input[type=submit]")
    page.wait_for_selector(".messagelist")
    assert "Version 1 is in force." in page.inner_text(".messagelist")
    assert "wanjiru" in page.inner_text("#history")
    saved = MessageTemplate.objects.get(lender=lender_a)
    assert (saved.kind, saved.version, saved.changed_by) == ("receipt", 1, admin)

    page.fill(
        "#id_text", "{lender}: we got {amount}, thank you! Still to pay: {balance}. {offline_note}"
    )
    wait_for_preview(page, "Lender A: we got KES 1,250.00, thank you! Still to pay")
    save_screenshot(page, "backoffice-templates")
