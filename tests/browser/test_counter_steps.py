"""The counter as a clerk meets it on a phone (390 by 844 px): the customer's language at step 1,
the plan quoted live, the QR code at once and bright, errors on their field, a sale resumed
as typed, the model suggested from the IMEI, and the receipt."""

import io
import json
from decimal import Decimal

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from apps.collections.services import sale_plan_quote
from apps.core.money import money_format
from apps.devices.provisioning import P
from apps.retailers.models import Sale
from tests.accounts.factories import PASSWORD
from tests.browser.conftest import save_screenshot, texted_code
from tests.devices.factories import valid_imei
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for
from tests.retailers.factories import clerk_for, shop_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def counter(live_server, browser, lender_a):
    """A clerk logged in at the counter on a phone, and the lender's 12-month product."""
    restriction_policy_version_for(lender_a)
    product = LoanProductFactory(
        lender=lender_a, name="12 months", min_down_payment_percent=Decimal(10)
    )
    clerk = clerk_for(shop_for(lender_a))
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/pos/")
    page.fill("#id_username", clerk.user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/pos/")
    yield page, product
    context.close()


def step_1(page, *, locale: str = "en", national_id: str = "23456781") -> None:
    page.click("#new-sale")
    page.wait_for_url("**/customer/")
    page.fill("#id_full_name", "Amina Wanjiru")
    page.fill("#id_phone", "0712 345 678")
    page.fill("#id_national_id", national_id)
    page.select_option("#id_locale", locale)


def continue_to(page, step: str) -> None:
    page.click("form button[type=submit]")
    page.wait_for_url(f"**/{step}/")


def step_2(page, imei: str) -> None:
    page.fill("#id_imei", imei)
    page.fill("#id_brand", "Tecno")
    page.fill("#id_model_name", "Spark 20")
    page.fill("#id_price", "24000")


def to_sign(page, product, sms_outbox) -> None:
    """From the plan step with 4,000 down to the signed loan's QR page."""
    page.select_option("#id_product", str(product.pk))
    page.fill("#id_down_payment", "4000")
    continue_to(page, "consent")
    sent = len(sms_outbox)
    page.click("#send-code")
    page.wait_for_selector("#id_code")
    page.fill("#id_code", texted_code(sms_outbox, sent))
    page.click("#confirm-code")
    page.wait_for_url("**/sign/")
    page.click("#sign")
    page.wait_for_url("**/provision/")


def test_5_the_customers_language_is_asked_at_step_1_and_the_terms_use_it(
    counter, sms_outbox
) -> None:
    page, product = counter
    step_1(page, locale="es")
    expect(page.locator("#id_locale option:checked")).to_have_text("Español")
    save_screenshot(page, "counter-5-language")
    continue_to(page, "phone")
    step_2(page, valid_imei())
    continue_to(page, "plan")
    page.select_option("#id_product", str(product.pk))
    page.fill("#id_down_payment", "4000")
    continue_to(page, "consent")
    expect(page.locator("#consent-text")).to_contain_text("Las llamadas de emergencia")
    sent = len(sms_outbox)
    page.click("#send-code")
    page.wait_for_selector("#id_code")
    texted_code(sms_outbox, sent)
    assert "código" in sms_outbox[sent][1].lower()
    save_screenshot(page, "counter-5-consent-es")


def test_6_the_plan_states_the_minimum_and_quotes_as_the_clerk_types(counter) -> None:
    page, product = counter
    step_1(page)
    continue_to(page, "phone")
    step_2(page, valid_imei())
    continue_to(page, "plan")
    expect(page.locator("#plan-minimum")).to_have_text("Minimum down payment: KES 2,400.00")

    page.fill("#id_down_payment", "1000")
    expect(page.locator("#plan-quote")).to_have_text(
        "The down payment must be at least KES 2,400.00."
    )
    expect(page.locator("#plan-quote")).to_have_class("quote refused")
    save_screenshot(page, "counter-6-quote-refused")

    page.locator("#id_down_payment").fill("")
    page.locator("#id_down_payment").press_sequentially("4000")
    quote = sale_plan_quote(
        sale=Sale.objects.get(), product_id=product.pk, down_payment=Decimal(4000)
    )
    first = quote.schedule.lines[0]
    expected = (
        f"12 × {money_format(first.total, 'KES')} · "  # noqa: RUF001
        f"total {money_format(quote.schedule.total, 'KES')} · "
        f"first due {first.due_date.day} {first.due_date:%b}"
    )
    expect(page.locator("#plan-quote")).to_have_text(expected)
    save_screenshot(page, "counter-6-quote")

    page.fill("#id_down_payment", "1000")
    continue_to(page, "plan")  # refused: the same page, the error under the field
    expect(page.locator("#id_down_payment_error")).to_have_text(
        "The down payment must be at least KES 2,400.00."
    )


def test_7_the_qr_code_is_shown_at_once_full_width_and_bright_on_demand(
    counter, sms_outbox
) -> None:
    page, product = counter
    step_1(page)
    continue_to(page, "phone")
    step_2(page, valid_imei())
    continue_to(page, "plan")
    to_sign(page, product, sms_outbox)

    qr = page.locator("#provisioning-qr svg")
    expect(qr).to_be_visible()  # no tap needed
    box = qr.bounding_box()
    assert box["width"] >= 360, box
    assert box["width"] <= PHONE["width"]
    save_screenshot(page, "counter-7-qr")

    def decoded() -> dict:
        image = Image.open(io.BytesIO(page.locator("#provisioning-qr").screenshot()))
        (code,) = zxingcpp.read_barcodes(image)
        return json.loads(code.text)

    extras = decoded()[f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert set(extras) == {"server", "token"}

    page.click("#qr-bright")
    expect(page.locator("#provisioning-qr")).to_have_class("qr pos-qr bright")
    box = qr.bounding_box()
    assert box["width"] >= PHONE["width"] - 1, box  # as wide as the screen
    assert decoded()[f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE"] == extras  # the same code
    background = page.locator("#provisioning-qr").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert background == "rgb(255, 255, 255)"
    save_screenshot(page, "counter-7-qr-bright")
    page.locator("#provisioning-qr").click()
    expect(page.locator("#provisioning-qr")).to_have_class("qr pos-qr")
    scanned = decoded()
    page.reload()  # a reload shows the code the phone may have scanned, not a new one
    expect(qr).to_be_visible()
    assert decoded() == scanned


def test_8_errors_titles_resuming_the_model_and_the_receipt(counter, sms_outbox) -> None:
    page, product = counter
    step_1(page, national_id="12345")
    assert page.title() == "Customer · Point of sale · Smart Collection"
    continue_to(page, "customer")
    error = page.locator("#id_national_id_error")
    expect(error).to_have_text("A Kenyan national id number is 7 or 8 digits.")
    expect(page.locator("#id_national_id")).to_have_attribute("aria-invalid", "true")
    # next to its field, highlighted
    field, message = page.locator("#id_national_id").bounding_box(), error.bounding_box()
    assert 0 <= message["y"] - (field["y"] + field["height"]) < 20
    border = page.locator("#id_national_id").evaluate("e => getComputedStyle(e).borderTopColor")
    assert border == "rgb(180, 35, 24)"
    expect(page.locator("#id_full_name")).to_have_value("Amina Wanjiru")  # kept as typed
    save_screenshot(page, "counter-8-error-on-field")

    page.fill("#id_national_id", "23456781")
    continue_to(page, "phone")
    assert page.title() == "Phone · Point of sale · Smart Collection"
    expect(page.locator("h1")).to_have_text("Phone")
    imei = valid_imei()  # a demo phone's TAC
    page.locator("#id_imei").press_sequentially(imei)
    expect(page.locator("#id_brand")).to_have_value("Tecno")
    expect(page.locator("#id_model_name")).to_have_value("Spark 20")
    expect(page.locator("#model-suggestion")).to_contain_text("Suggested from the IMEI")
    save_screenshot(page, "counter-8-model-suggested")
    page.fill("#id_price", "24000")
    continue_to(page, "plan")

    # the clerk leaves and comes back from "Recent sales": the sale opens at its step
    page.click(".pos-header a")
    page.wait_for_url("**/pos/")
    save_screenshot(page, "counter-8-recent-sales")
    page.click(".sales a")
    page.wait_for_url("**/plan/")
    page.goto(page.url.replace("/plan/", "/customer/"))
    expect(page.locator("#id_full_name")).to_have_value("Amina Wanjiru")
    expect(page.locator("#id_national_id")).to_have_value("23456781")
    page.goto(page.url.replace("/customer/", "/phone/"))
    expect(page.locator("#id_imei")).to_have_value(imei)
    expect(page.locator("#id_price")).to_have_value("24000.00")
    page.goto(page.url.replace("/phone/", "/plan/"))
    to_sign(page, product, sms_outbox)

    page.click("#receipt-link")
    page.wait_for_url("**/receipt/")
    expect(page.locator("#receipt-down-payment")).to_have_text("KES 4,000.00")
    expect(page.locator("#receipt-total")).to_contain_text("KES ")
    expect(page.locator("#receipt-how-to-pay")).to_have_text("On the customer's page below.")
    expect(page.locator("#receipt-customer-page")).to_contain_text("/my/lender-a/")
    save_screenshot(page, "counter-8-receipt")
