"""The clerk's flow through the real pages (Django test client) and its services."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.collections.models import Loan
from apps.customers.models import ConsentRecord, Customer
from apps.devices.models import Device
from apps.retailers.models import Sale
from tests.accounts.factories import PASSWORD
from tests.devices.factories import phone_registered, valid_imei
from tests.lenders.factories import LoanProductFactory
from tests.retailers.factories import clerk_for, shop_for

pytestmark = pytest.mark.django_db


def walk_to_consent(client, lender, product, imei: str) -> Sale:
    client.post(reverse("pos:home"), {"lender": lender.pk})
    sale = Sale.objects.latest("created_at")
    client.post(
        reverse("pos:customer", args=[sale.public_id]),
        {"full_name": "Amina Wanjiru", "phone": "0712 345 678", "national_id": "23456781"},
    )
    client.post(
        reverse("pos:phone", args=[sale.public_id]),
        {"imei": imei, "brand": "Tecno", "model_name": "Spark 20", "price": "24000"},
    )
    client.post(
        reverse("pos:plan", args=[sale.public_id]), {"product": product.pk, "down_payment": "4000"}
    )
    sale.refresh_from_db()
    return sale


def test_a_sale_from_customer_to_qr(
    counter, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    client, clerk, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    assert sale.step == Sale.Step.CONSENT
    assert Customer.objects.get().phone == "+254712345678"

    page = client.get(reverse("pos:consent", args=[sale.public_id]))
    text = page.context["consent_text"]
    assert "Emergency calls always work" in text
    assert "From day 30 overdue: the phone locks." in text
    assert "you receive an unlock code by SMS" in text
    assert (
        f"lift a lock yourself from the lock screen for {lender_a.emergency_grace_hours} hours"
        in (" ".join(text.split()))
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "send"})
    ((to, body),) = sms_outbox
    code = re.search(r"\b(\d{6})\b", body).group(1)
    assert to == "+254712345678"
    assert code not in str(list(AuditEvent.objects.values_list("data", flat=True)))

    wrong = client.post(
        reverse("pos:consent", args=[sale.public_id]), {"action": "confirm", "code": "000000"}
    )
    assert "not right" in wrong.content.decode()
    response = client.post(
        reverse("pos:consent", args=[sale.public_id]), {"action": "confirm", "code": code}
    )
    assert response.status_code == 302
    record = ConsentRecord.objects.get()
    assert (record.text, record.method, record.code_check, record.clerk_id) == (
        text,
        "sms_code",
        "passed",
        clerk.user_id,
    )
    assert record.ip == "127.0.0.1"

    sign_url = reverse("pos:sign", args=[sale.public_id])
    assert client.post(sign_url).status_code == 302
    assert client.post(sign_url).status_code == 302  # a double submit
    loan = Loan.objects.get()
    assert (loan.consent, loan.shop_id, loan.status) == (record, clerk.shop_id, "active")
    assert Device.objects.get().loan == loan

    qr = client.post(reverse("pos:provision", args=[sale.public_id]), follow=True)
    assert b"<svg" in qr.content
    assert client.get(reverse("pos:status", args=[sale.public_id])).json() == {"device": "pending"}
    assert client.get(reverse("pos:receipt", args=[sale.public_id])).status_code == 200


def test_a_reloaded_page_resumes_at_the_same_step(counter, lender_a) -> None:
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    page = client.get(reverse("pos:phone", args=[sale.public_id]))
    assert page.context["form"].initial["brand"] == "Tecno"
    assert (
        client.get(reverse("pos:sign", args=[sale.public_id])).status_code == 302
    )  # no consent yet


@pytest.mark.parametrize(
    ("imei", "message"),
    [("123456789012345", "not a valid IMEI"), ("35209900176148", "not a valid IMEI")],
)
def test_bad_imeis_are_explained(counter, lender_a, imei, message) -> None:
    client, _, _ = counter
    client.post(reverse("pos:home"), {"lender": lender_a.pk})
    sale = Sale.objects.get()
    client.post(
        reverse("pos:customer", args=[sale.public_id]),
        {"full_name": "A B", "phone": "0712345678", "national_id": "10000001"},
    )
    response = client.post(
        reverse("pos:phone", args=[sale.public_id]),
        {"imei": imei, "brand": "X", "model_name": "Y", "price": "100"},
    )
    assert message in response.content.decode()


def test_a_phone_already_on_an_open_loan_is_refused(counter, lender_a) -> None:
    from tests.collections.factories import signed_loan
    from tests.devices.factories import valid_imei as fresh

    imei = fresh()
    phone_registered(signed_loan(lender_a), imei=imei, brand="X", model_name="Y")
    client, _, _ = counter
    client.post(reverse("pos:home"), {"lender": lender_a.pk})
    sale = Sale.objects.latest("created_at")
    client.post(
        reverse("pos:customer", args=[sale.public_id]),
        {"full_name": "A B", "phone": "0712345678", "national_id": "10000001"},
    )
    response = client.post(
        reverse("pos:phone", args=[sale.public_id]),
        {"imei": imei, "brand": "X", "model_name": "Y", "price": "100"},
    )
    assert "already the collateral" in response.content.decode()


def test_clerks_never_get_into_the_admin_and_agents_not_into_the_pos(
    counter, lender_a, make_agent
) -> None:
    from apps.core.actor import Actor
    from apps.retailers.services import clerk_create

    client, clerk, _ = counter
    assert client.get(reverse("admin:index")).status_code == 302
    real = clerk_create(
        shop=clerk.shop,
        username="kiosk-2",
        password="a-long-enough-passphrase",
        actor=Actor.system(),
    )
    assert not real.user.is_staff
    admin_client = Client()
    response = admin_client.post(
        reverse("admin:login"), {"username": "kiosk-2", "password": "a-long-enough-passphrase"}
    )
    assert response.status_code == 200  # the form again: not a staff account
    assert "_auth_user_id" not in admin_client.session
    agent_client = Client()
    agent = make_agent(lender_a)
    response = agent_client.post(
        reverse("pos:login"), {"username": agent.username, "password": PASSWORD}
    )
    assert "not a shop clerk" in response.content.decode()


def test_another_shops_sale_is_not_found(counter, lender_a, lender_b) -> None:
    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    other_shop = shop_for(lender_b)
    other = Client()
    other.post(
        reverse("pos:login"),
        {"username": clerk_for(other_shop).user.username, "password": PASSWORD},
    )
    assert other.get(reverse("pos:consent", args=[sale.public_id])).status_code == 404


def test_signing_refuses_terms_that_changed_after_consent(
    counter, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from apps.core.actor import Actor
    from apps.lenders.models import RestrictionPolicy
    from apps.lenders.services import default_stages, restriction_policy_version_create

    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "send"})
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)
    client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "confirm", "code": code})
    stages = [s for s in default_stages("en", country="KE") if s.action != "alarm"]
    restriction_policy_version_create(
        policy=RestrictionPolicy.objects.get(lender=lender_a, is_active=True),
        stages=stages,
        actor=Actor.system(),
    )
    response = client.post(reverse("pos:sign", args=[sale.public_id]))
    assert "terms changed" in response.content.decode()
    assert not Loan.objects.exists()


def test_steps_cannot_be_skipped(counter, lender_a) -> None:
    client, _, product = counter
    client.post(reverse("pos:home"), {"lender": lender_a.pk})
    sale = Sale.objects.get()
    response = client.post(
        reverse("pos:plan", args=[sale.public_id]), {"product": product.pk, "down_payment": "1"}
    )
    assert "earlier step" in response.content.decode()


@pytest.mark.parametrize(
    ("down", "message"),
    [
        ("23999.70", "The smallest amount it can finance is KES 0.47"),  # financed 0.30
        ("100", "The down payment must be at least KES 240.00."),  # 1% of 24,000
    ],
)
def test_the_plan_step_shows_the_refusal_on_the_down_payment_field_when_the_terms_refuse_it(
    counter, lender_a, down, message
) -> None:
    client, _, _ = counter
    weekly = LoanProductFactory(
        lender=lender_a,
        name="47 weeks",
        installments=47,
        frequency="weekly",
        interest_method="declining",
        interest_rate_percent=Decimal(30),
        origination_fee_percent=Decimal(0),
        min_down_payment_percent=Decimal(1),
    )
    sale = walk_to_consent(client, lender_a, weekly, valid_imei())
    response = client.post(
        reverse("pos:plan", args=[sale.public_id]), {"product": weekly.pk, "down_payment": down}
    )
    form = response.context["form"]
    assert response.status_code == 200
    assert not form.non_field_errors()
    assert [message in error for error in form.errors["down_payment"]] == [True]
    page = response.content.decode()
    assert page.index('name="down_payment"') < page.index(message)  # under the field
    sale.refresh_from_db()
    assert sale.down_payment_amount == Decimal(4000)  # the plan walked to before is kept


@pytest.mark.parametrize(
    ("language", "new_sale", "imei_help", "switcher"),
    [
        ("es", "Venta nueva", "Marca *#06# en el teléfono para verlo.", "Idioma"),
        ("zh-hans", "新销售", "在手机上拨打 *#06# 即可查看。", "语言"),
        ("en", "New sale", "Dial *#06# on the phone to see it.", "Language"),
    ],
)
def test_the_clerk_switches_the_counter_pages_language(
    counter, lender_a, language, new_sale, imei_help, switcher
) -> None:
    client, _, _ = counter
    answer = client.post(
        reverse("set_language"), {"language": language, "next": reverse("pos:home")}
    )
    assert answer.status_code == 302
    home = client.get(reverse("pos:home")).content.decode()
    assert new_sale in home
    assert (
        f'<html lang="{language}">' in home
    )  # screen readers and fonts follow the page's language
    assert f'<option value="{language}" selected>' in home
    assert switcher in home
    client.post(reverse("pos:home"), {"lender": lender_a.pk})
    sale = Sale.objects.latest("created_at")
    client.post(
        reverse("pos:customer", args=[sale.public_id]),
        {"full_name": "Amina Wanjiru", "phone": "0712 345 678", "national_id": "23456781"},
    )
    assert imei_help in client.get(reverse("pos:phone", args=[sale.public_id])).content.decode()


def test_a_consent_code_the_sms_gateway_could_not_send_is_not_kept(
    counter, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from tests.fakes.sms import FakeSmsGateway

    client, _, product = counter
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    FakeSmsGateway.down = True
    page = client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "send"})
    assert page.status_code == 200
    assert "could not be sent. Try again in a minute." in page.content.decode()
    sale.refresh_from_db()
    assert sale.consent_challenge_id is None  # no code waiting that the customer never got
    assert not AuditEvent.objects.filter(action="customers.consent.code_sent").exists()
    FakeSmsGateway.down = False
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("pos:consent", args=[sale.public_id]), {"action": "send"})
    sale.refresh_from_db()
    assert sale.consent_challenge_id is not None
    assert len(sms_outbox) == 1


def test_the_consent_says_nothing_of_a_grace_the_lender_turned_off(counter, lender_a) -> None:
    client, _clerk, product = counter
    lender_a.emergency_grace_hours = 0
    lender_a.save(update_fields=["emergency_grace_hours"])
    sale = walk_to_consent(client, lender_a, product, valid_imei())
    text = client.get(reverse("pos:consent", args=[sale.public_id])).context["consent_text"]
    assert "you receive an unlock code by SMS" in text
    assert "lift a lock yourself" not in text
