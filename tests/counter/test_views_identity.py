"""Step 1 at the counter and the number on record: a new person on another customer's number
stops the sale at step 1, with the holder's masked name on the number's field; and the
self-service login, which finds the customer by number, opens that number's customer only."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from apps.collections.services import loan_sign
from apps.core.actor import Actor
from apps.core.money import Money
from apps.customers.models import Customer
from apps.retailers.models import Sale
from tests.accounts.factories import PASSWORD
from tests.collections.factories import signed_loan
from tests.customers.factories import consent_for
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for
from tests.retailers.factories import clerk_for, shop_for

pytestmark = pytest.mark.django_db

TAKEN_ES = "Este número pertenece a otro cliente ({}): compruébalo."
TAKEN_ZH = "此号码属于另一位客户（{}）：请核对。"  # noqa: RUF001  (Chinese punctuation)

BRIAN = {"full_name": "Brian Otieno", "national_id": "30987654"}


@pytest.fixture
def clerk_client(lender_a) -> Client:
    restriction_policy_version_for(lender_a)
    client = Client()
    username = clerk_for(shop_for(lender_a)).user.username
    assert (
        client.post(reverse("pos:login"), {"username": username, "password": PASSWORD}).status_code
        == 302
    )
    return client


def _new_sale(client: Client, lender) -> Sale:
    client.post(reverse("pos:home"), {"lender": lender.pk})
    return Sale.objects.latest("created_at")


def _amina(lender) -> Customer:
    loan = signed_loan(lender)
    Customer.objects.filter(pk=loan.customer_id).update(full_name="Amina Wanjiru Kamau")
    return Customer.objects.get(pk=loan.customer_id)


def test_step_1_stops_with_the_masked_holder_on_the_number_when_it_is_another_customers(
    clerk_client, lender_a
) -> None:
    amina = _amina(lender_a)
    sale = _new_sale(clerk_client, lender_a)
    page = clerk_client.post(
        reverse("pos:customer", args=[sale.public_id]), {**BRIAN, "phone": "0" + amina.phone[4:]}
    )  # as dialled in Kenya
    assert page.status_code == 200
    assert page.context["form"].errors == {
        "phone": ["This number belongs to another customer (A. K***): check it."]
    }
    sale.refresh_from_db()
    assert (sale.step, sale.customer_id) == (Sale.Step.CUSTOMER, None)
    assert Customer.objects.filter(lender=lender_a).count() == 1
    corrected = clerk_client.post(
        reverse("pos:customer", args=[sale.public_id]), {**BRIAN, "phone": "0722 000 111"}
    )
    assert corrected.status_code == 302
    assert corrected.url == reverse("pos:phone", args=[sale.public_id])
    sale.refresh_from_db()
    assert (sale.customer.full_name, sale.customer.phone) == ("Brian Otieno", "+254722000111")


@pytest.mark.parametrize(
    ("language", "message"),
    [("es", TAKEN_ES.format("A. K***")), ("zh-hans", TAKEN_ZH.format("A. K***"))],
)
def test_step_1_says_so_in_the_clerks_language_when_the_number_is_taken(
    clerk_client, lender_a, language, message
) -> None:
    amina = _amina(lender_a)
    clerk_client.post(reverse("set_language"), {"language": language, "next": reverse("pos:home")})
    sale = _new_sale(clerk_client, lender_a)
    page = clerk_client.post(
        reverse("pos:customer", args=[sale.public_id]), {**BRIAN, "phone": amina.phone}
    )
    assert page.context["form"].errors == {"phone": [message]}


def _log_in_and_read_home(lender, phone: str, sms_outbox, capture) -> str:
    client = Client()
    with capture(execute=True):
        client.post(
            reverse("customers:login", kwargs={"lender_slug": lender.slug}), {"phone": phone}
        )
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)
    client.post(reverse("customers:code", kwargs={"lender_slug": lender.slug}), {"code": code})
    return client.get(
        reverse("customers:home", kwargs={"lender_slug": lender.slug})
    ).content.decode()


def test_each_customer_sees_their_own_loan_only_when_a_clerk_typed_one_number_for_two(
    clerk_client, lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    """The issue's case: the clerk types Amina's number for Brian, a new customer, then
    corrects it. Before, Brian was created on her number at the first try (the correction
    then clashed with his own record), and the login, taking the newest customer on the
    number, showed Amina Brian's loan and hid her own."""
    amina = _amina(lender_a)
    amina_loan = amina.loans.get()
    sale = _new_sale(clerk_client, lender_a)
    for phone in (amina.phone, "0722 000 111"):  # the typo, then the right number
        clerk_client.post(reverse("pos:customer", args=[sale.public_id]), {**BRIAN, "phone": phone})
    sale.refresh_from_db()
    brian = sale.customer
    brian_loan = loan_sign(
        customer=brian,
        consent=consent_for(brian),
        product=LoanProductFactory(lender=lender_a),
        device_price=Money(Decimal(12000), "KES"),
        down_payment=Money(Decimal(2000), "KES"),
        actor=Actor.system(),
    )
    capture = django_capture_on_commit_callbacks
    for customer, mine, theirs in (
        (amina, amina_loan, brian_loan),
        (brian, brian_loan, amina_loan),
    ):
        home = _log_in_and_read_home(lender_a, customer.phone, sms_outbox, capture)
        assert mine.reference in home
        assert theirs.reference not in home
