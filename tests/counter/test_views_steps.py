"""The counter's steps as the clerk meets them: the customer's language, the live quote of
the plan, errors under their field, a sale resumed as typed, the receipt."""

import base64
import io
import json
import logging
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import zxingcpp
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from PIL import Image

from apps.audit.models import AuditEvent
from apps.collections.models import Loan
from apps.customers.models import Customer
from apps.devices.models import Device, EnrollmentToken
from apps.devices.provisioning import P
from apps.retailers.models import Sale
from tests.counter.test_views_sale import walk_to_consent
from tests.customers.factories import CustomerFactory
from tests.devices.enrollment import enroll
from tests.devices.factories import valid_imei
from tests.retailers.factories import ShopFactory, clerk_for

pytestmark = pytest.mark.django_db

AMINA = {"full_name": "Amina Wanjiru", "phone": "0712 345 678", "national_id": "23456781"}


def new_sale(client, lender) -> Sale:
    client.post(reverse("pos:home"), {"lender": lender.pk})
    return Sale.objects.latest("created_at")


def to_plan(client, lender, **customer) -> Sale:
    sale = new_sale(client, lender)
    client.post(reverse("pos:customer", args=[sale.public_id]), AMINA | customer)
    client.post(
        reverse("pos:phone", args=[sale.public_id]),
        {"imei": valid_imei(), "brand": "Tecno", "model_name": "Spark 20", "price": "24000"},
    )
    return sale


def quoted(client, sale, product, down_payment: str) -> dict:
    """The plan page's live quote for ``down_payment``, as its script asks for it."""
    return client.get(
        reverse("pos:plan_quote", args=[sale.public_id]),
        {"product": product.pk, "down_payment": down_payment},
    ).json()


def sign(client, sale, sms_outbox, capture) -> Loan:
    with capture(execute=True):
        client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "send"})
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)
    client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "confirm", "code": code})
    client.post(reverse("pos:sign", args=[sale.public_id]))
    return Loan.objects.get(sale__public_id=sale.public_id)


# --- the customer's language (step 1) ----------------------------------------------------


def test_the_language_chosen_at_step_1_is_the_terms_and_the_codes(
    counter, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    client, _, product = counter
    sale = to_plan(client, lender_a, locale="es")
    assert Customer.objects.get().locale == "es"
    client.post(
        reverse("pos:plan", args=[sale.public_id]), {"product": product.pk, "down_payment": "4000"}
    )
    page = client.get(reverse("pos:consent", args=[sale.public_id]))
    assert "Las llamadas de emergencia" in page.context["consent_text"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "send"})
    ((_, body),) = sms_outbox
    assert "código" in body.lower()


@pytest.mark.parametrize(
    ("locale", "stage_line"),
    [("es", "Desde el día 30 de atraso"), ("zh-hans", "逾期第 30 天起")],
)
def test_the_terms_ladder_is_in_the_customers_language_with_no_english_line(
    counter, lender_a, locale, stage_line
) -> None:
    client, _, product = counter
    sale = to_plan(client, lender_a, locale=locale)
    client.post(
        reverse("pos:plan", args=[sale.public_id]), {"product": product.pk, "down_payment": "4000"}
    )
    text = client.get(reverse("pos:consent", args=[sale.public_id])).context["consent_text"]
    ladder = [line for line in text.splitlines() if line.startswith("- ")]
    assert ladder
    assert stage_line in text
    assert not [line for line in ladder if "From day" in line or "overdue" in line]


def test_the_terms_show_amounts_in_minor_units_and_dates_day_first(counter, lender_a) -> None:
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    page = client.get(reverse("pos:consent", args=[sale.public_id]))
    html, text = page.content.decode(), page.context["consent_text"]
    assert "Cash price 24,000.00 KES, down payment 4,000.00 KES" in text
    assert "financed 20,000.00 KES" in text
    assert not re.search(r"\d\.\d{3}\b", text + html)  # never as stored: "2183.320"
    for line in page.context["quote"].schedule.lines:  # the schedule: day, month, year
        assert f"<td>{line.due_date:%d/%m/%Y}</td><td>KES {line.total:,.2f}</td>" in html
    assert not re.search(r"[A-Z][a-z]{2}\. \d{1,2}, \d{4}", html)  # never "Jan. 6, 2027"


def test_a_customer_found_again_takes_the_language_chosen_now(counter, lender_a) -> None:
    client, _, _ = counter
    amina = CustomerFactory(
        lender=lender_a, phone="+254712345678", national_id="23456781", locale="en"
    )
    to_plan(client, lender_a, locale="zh-hans")
    amina.refresh_from_db()
    assert amina.locale == "zh-hans"
    event = AuditEvent.objects.get(action="customers.customer.locale_changed")
    assert event.data == {"old": {"locale": "en"}, "new": {"locale": "zh-hans"}}


def test_step_1_offers_the_lenders_language_first(counter, lender_a) -> None:
    client, _, _ = counter
    sale = new_sale(client, lender_a)
    page = client.get(reverse("pos:customer", args=[sale.public_id]))
    assert page.context["form"].initial["locale"] == lender_a.locale


# --- the plan's live quote (step 3) -----------------------------------------------------


def test_the_quote_is_the_schedule_the_loan_is_signed_with(
    counter, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    client, _, product = counter
    sale = to_plan(client, lender_a)
    body = quoted(client, sale, product, "4000")
    client.post(
        reverse("pos:plan", args=[sale.public_id]), {"product": product.pk, "down_payment": "4000"}
    )
    loan = sign(client, sale, sms_outbox, django_capture_on_commit_callbacks)
    installments = list(loan.installments.order_by("sequence"))
    first, total = installments[0], sum(i.total_due for i in installments)
    # 20,000 financed, 2.5 % flat a month and 1 % fee over 12 months
    assert body == {
        "minimum": "Minimum down payment: KES 2,400.00",
        "quote": f"12 × KES {first.total_due:,.2f} · total KES {total:,.2f} · first due "  # noqa: RUF001
        f"{first.due_date.day} {first.due_date:%b}",
        "error": "",
    }
    assert len(installments) == 12
    assert all(i.total_due == first.total_due for i in installments[:-1])  # the last rounds


def test_the_quote_names_the_minimum_when_the_down_payment_is_below_it(counter, lender_a) -> None:
    client, _, product = counter
    sale = to_plan(client, lender_a)
    body = quoted(client, sale, product, "1000")
    assert body == {
        "minimum": "Minimum down payment: KES 2,400.00",
        "quote": "",
        "error": "The down payment must be at least KES 2,400.00.",
    }
    page = client.post(
        reverse("pos:plan", args=[sale.public_id]), {"product": product.pk, "down_payment": "1000"}
    )
    assert page.context["form"].errors == {
        "down_payment": ["The down payment must be at least KES 2,400.00."]
    }


def test_the_quote_states_the_minimum_before_a_down_payment_is_typed(counter, lender_a) -> None:
    client, _, product = counter
    sale = to_plan(client, lender_a)
    assert quoted(client, sale, product, "") == {
        "minimum": "Minimum down payment: KES 2,400.00",
        "quote": "",
        "error": "",
    }
    page = client.get(reverse("pos:plan", args=[sale.public_id]))
    assert "Minimum down payment: KES 2,400.00" in page.content.decode()


def test_another_shops_sale_gets_no_quote(counter, lender_a) -> None:
    client, _, product = counter
    sale = to_plan(client, lender_a)
    other = Client()
    other.force_login(clerk_for(ShopFactory(lenders=[lender_a])).user)
    response = other.get(
        reverse("pos:plan_quote", args=[sale.public_id]),
        {"product": product.pk, "down_payment": "4000"},
    )
    assert response.status_code == 404


# --- errors on their field, titles, resuming -------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"national_id": "12345"}, "national_id", "7 or 8 digits"),
        ({"phone": "12345"}, "phone", "not a valid"),
    ],
)
def test_a_refused_entry_is_shown_under_its_field(
    counter, lender_a, values, field, message
) -> None:
    client, _, _ = counter
    sale = new_sale(client, lender_a)
    page = client.post(reverse("pos:customer", args=[sale.public_id]), AMINA | values)
    form = page.context["form"]
    assert not form.non_field_errors()
    assert message in form.errors[field][0]
    html = page.content.decode()
    assert f'id="id_{field}_error"' in html
    assert re.search(rf'<input[^>]*aria-invalid="true"[^>]*id="id_{field}"', html)


def test_an_imei_already_sold_is_shown_under_the_imei(counter, lender_a) -> None:
    from tests.collections.factories import signed_loan
    from tests.devices.factories import phone_registered

    imei = valid_imei()
    phone_registered(signed_loan(lender_a), imei=imei, brand="X", model_name="Y")
    client, _, _ = counter
    sale = new_sale(client, lender_a)
    client.post(reverse("pos:customer", args=[sale.public_id]), AMINA)
    page = client.post(
        reverse("pos:phone", args=[sale.public_id]),
        {"imei": imei, "brand": "X", "model_name": "Y", "price": "100"},
    )
    assert "already the collateral" in page.context["form"].errors["imei"][0]


@pytest.mark.parametrize(
    ("name", "title"), [("customer", "Customer"), ("phone", "Phone"), ("plan", "Plan")]
)
def test_each_step_is_titled_with_its_name(counter, lender_a, name, title) -> None:
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    html = client.get(reverse(f"pos:{name}", args=[sale.public_id])).content.decode()
    assert f"<title>{title} · Point of sale · Smart Collection</title>" in html
    assert f"<h1>{title}</h1>" in html
    assert f'aria-current="step">{title}</li>' in html


def test_a_resumed_sale_shows_what_was_typed(counter, lender_a) -> None:
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    home = client.get(reverse("pos:home")).content.decode()
    assert reverse("pos:consent", args=[sale.public_id]) in home  # resumes at its step
    customer = client.get(reverse("pos:customer", args=[sale.public_id])).context["form"]
    assert {k: customer.initial[k] for k in ("full_name", "phone", "national_id")} == {
        "full_name": "Amina Wanjiru",
        "phone": "+254712345678",
        "national_id": "23456781",
    }
    plan = client.get(reverse("pos:plan", args=[sale.public_id]))
    assert 'value="4000.00"' in plan.content.decode()  # the currency's cents, not "4000.000"
    assert plan.context["quote_text"].startswith("12 × KES ")  # noqa: RUF001


def test_a_draft_left_for_a_day_leaves_recent_sales(counter, lender_a) -> None:
    client, _, product = counter
    old = walk_to_consent(client, lender_a, product, valid_imei())
    fresh = new_sale(client, lender_a)
    Sale.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(hours=25))
    home = client.get(reverse("pos:home")).content.decode()
    assert str(fresh.public_id) in home
    assert str(old.public_id) not in home


# --- the receipt ----------------------------------------------------------------------


def test_the_receipt_says_what_was_paid_what_is_owed_and_how_to_pay(
    counter, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    loan = sign(client, sale, sms_outbox, django_capture_on_commit_callbacks)
    page = client.get(reverse("pos:receipt", args=[sale.public_id]))
    total = sum(i.total_due for i in loan.installments.all())
    assert (page.context["down_payment"], page.context["total"]) == (
        "KES 4,000.00",
        f"KES {total:,.2f}",
    )
    assert page.context["customer_page"] == "http://testserver/my/lender-a/"
    assert page.context["how_to_pay"] == "On the customer's page below."
    assert total > Decimal(20000)
    html = page.content.decode()
    for row in loan.installments.all():  # the schedule: day, month, year
        assert f"<td>{row.due_date:%d/%m/%Y}</td>" in html
    assert not re.search(r"\d\.\d{3}\b", html)  # no amount as stored


def test_step_2_suggests_the_model_the_imeis_tac_names(counter) -> None:
    client, _, _ = counter
    url = reverse("pos:phone_model")
    assert client.get(url, {"imei": "35209900"}).json() == {
        "brand": "Tecno",
        "model_name": "Spark 20",
    }
    assert client.get(url, {"imei": "99000086"}).json() == {}
    assert Client().get(url, {"imei": "35209900"}).status_code == 302  # clerks only


def shown_code(page) -> str:
    """The enrollment code in the page's QR code, read from its PNG as a phone reads it."""
    (found,) = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(base64.b64decode(page.context["qr_png"])))
    )
    return json.loads(found.text)[f"{P}PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["token"]


@pytest.fixture
def provisioning(counter, lender_a, sms_outbox, django_capture_on_commit_callbacks):
    """The client on the provisioning page of a signed sale: its URL and the phone sold."""
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    sign(client, sale, sms_outbox, django_capture_on_commit_callbacks)
    return client, reverse("pos:provision", args=[sale.public_id]), Device.objects.get()


def test_the_qr_code_is_shown_at_once_and_a_reload_shows_the_same_working_code(
    provisioning, caplog
) -> None:
    client, url, device = provisioning
    caplog.set_level(logging.DEBUG)
    first = client.get(url)
    assert b'id="provisioning-qr"' in first.content
    assert b"<svg" in first.content  # no tap needed
    token = shown_code(first)
    again = client.get(url)  # a reload, a back and forth, a prefetch
    same = ("qr_svg", "qr_png", "expires_at")
    assert [again.context[k] for k in same] == [first.context[k] for k in same]
    assert shown_code(again) == token
    assert EnrollmentToken.objects.filter(device=device).count() == 1
    minted = AuditEvent.objects.filter(action="devices.enrollment_token.minted")
    assert minted.count() == 1  # showing it again is not recorded again
    response = enroll(Client(), token, device.imei)  # the code scanned before the reload
    assert response.status_code == 201, response.content
    assert b"Enrolled" in client.get(url).content
    # the code is in no audit record and no log line
    assert token not in str(list(AuditEvent.objects.values_list("data", flat=True)))
    assert token not in caplog.text


def test_a_fresh_code_revokes_the_one_shown(provisioning) -> None:
    client, url, device = provisioning
    old = shown_code(client.get(url))
    posted = client.post(url)
    assert (posted.status_code, posted.url) == (302, url)  # a reload does not post again
    page = client.get(url)
    new = shown_code(page)
    assert new != old
    assert page.context["expires_at"] == EnrollmentToken.objects.latest("pk").expires_at
    assert shown_code(client.get(url)) == new
    refused = enroll(Client(), old, device.imei)
    assert (refused.status_code, refused.json()["code"]) == (401, "enrollment_token_invalid")
    assert enroll(Client(), new, device.imei).status_code == 201


def test_a_code_that_expired_is_replaced_on_opening_the_page(provisioning) -> None:
    client, url, device = provisioning
    old = shown_code(client.get(url))
    EnrollmentToken.objects.update(expires_at=timezone.now())
    new = shown_code(client.get(url))
    assert new != old
    assert enroll(Client(), new, device.imei).status_code == 201


def test_the_quote_and_its_refusal_speak_the_clerks_language(counter, lender_a, settings) -> None:
    # the requests switch the thread's language: put it back for the tests after this one
    with translation.override(translation.get_language()):
        client, _, product = counter
        sale = to_plan(client, lender_a)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
        # the figures as the language writes them: only the words are checked here
        body = quoted(client, sale, product, "1000")
        assert body["minimum"].startswith("Enganche mínimo: KES 2")
        assert body["error"].startswith("El enganche debe ser de al menos KES 2")
        assert quoted(client, sale, product, "4000")["quote"].startswith("12 × KES ")  # noqa: RUF001
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
        page = client.post(
            reverse("pos:customer", args=[sale.public_id]), AMINA | {"national_id": "1"}
        )
        assert page.context["form"].errors["national_id"] == ["肯尼亚身份证号码为 7 或 8 位数字。"]


def test_the_receipt_names_the_paybill_and_the_account_where_the_lender_takes_m_pesa(
    counter, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from tests.collections.daraja import SHORTCODE, paybill_for

    paybill_for(lender_a)
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    loan = sign(client, sale, sms_outbox, django_capture_on_commit_callbacks)
    page = client.get(reverse("pos:receipt", args=[sale.public_id]))
    assert page.context["how_to_pay"] == (
        f"M-Pesa: Lipa na M-Pesa, Pay Bill, business number {SHORTCODE}, "
        f"account number {loan.reference}."
    )
    assert f"account number {loan.reference}" in page.content.decode()
