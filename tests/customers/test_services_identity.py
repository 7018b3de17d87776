"""One customer per mobile number at each lender: the counter stops on another customer's
number, the database refuses a second customer on it, and so the self-service login, which
finds the customer by number, can only ever open that number's own customer."""

import importlib

import pytest
from django.db import IntegrityError, connection
from django.utils import translation

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.core.errors import NotAllowed
from apps.customers.errors import PhoneInUse
from apps.customers.models import Customer
from apps.customers.services import customer_name_masked, customer_phone_change
from tests.customers.entry import BRIAN, create
from tests.customers.factories import CustomerFactory
from tests.lenders.factories import LenderFactory

pytestmark = pytest.mark.django_db

TAKEN_ES = "Este número pertenece a otro cliente ({}): compruébalo."
TAKEN_ZH = "此号码属于另一位客户（{}）：请核对。"  # noqa: RUF001  (Chinese punctuation)


@pytest.mark.parametrize(
    ("full_name", "masked"),
    [
        ("Brian Otieno", "B. O***"),
        ("Amina Wanjiru Kamau", "A. K***"),
        ("Madonna", "M***"),
        ("  łukasz   żółw ", "Ł. Ż***"),
        ("王小明", "王***"),
    ],
)
def test_a_name_is_masked_to_its_initials_when_shown_to_a_clerk(full_name, masked) -> None:
    assert customer_name_masked(full_name) == masked


def test_a_new_national_id_on_another_customers_number_is_refused_when_entered(lender_a) -> None:
    brian, _ = create(lender_a, **BRIAN)
    with pytest.raises(PhoneInUse) as refused:
        create(
            lender_a, full_name="Amina Wanjiru", phone="+254 722 000 111", national_id="23456781"
        )
    assert refused.value.message == "This number belongs to another customer (B. O***): check it."
    assert refused.value.code == "phone_in_use"
    assert list(Customer.objects.values_list("pk", flat=True)) == [brian.pk]
    assert AuditEvent.objects.filter(action="customers.customer.created").count() == 1


@pytest.mark.parametrize(
    ("language", "message"),
    [("es", TAKEN_ES.format("B. O***")), ("zh-hans", TAKEN_ZH.format("B. O***"))],
)
def test_the_refusal_speaks_the_clerks_language_when_not_english(
    lender_a, language, message
) -> None:
    create(lender_a, **BRIAN)
    with translation.override(language), pytest.raises(PhoneInUse) as refused:
        create(lender_a, full_name="Amina Wanjiru", phone="0722000111", national_id="23456781")
    assert refused.value.message == message


def test_a_number_is_free_for_a_customer_of_another_lender_when_entered(lender_a) -> None:
    create(lender_a, **BRIAN)
    other = LenderFactory(slug="lender-c", name="Lender C")
    amina, created = create(
        other, full_name="Amina Wanjiru", phone="0722000111", national_id="10000001"
    )
    assert created
    assert amina.phone == "+254722000111"


def test_the_database_refuses_a_second_customer_on_a_number_when_services_are_bypassed(
    lender_a,
) -> None:
    brian = CustomerFactory(lender=lender_a, phone="+254722000111")
    with pytest.raises(IntegrityError, match="customer_phone_unique_per_lender"):
        CustomerFactory(lender=lender_a, phone=brian.phone)


def test_a_customers_number_is_changed_with_the_reason_audited_when_free(lender_a) -> None:
    brian, _ = create(lender_a, **BRIAN)
    changed = customer_phone_change(
        customer_id=brian.pk,
        phone="0733 222 444",
        actor=Actor.system(),
        reason="The customer has a new SIM.",
    )
    assert changed.phone == "+254733222444"
    event = AuditEvent.objects.get(action="customers.customer.phone_changed")
    assert event.reason == "The customer has a new SIM."
    assert event.data == {"old": {"phone_last4": "0111"}, "new": {"phone_last4": "2444"}}
    with pytest.raises(NotAllowed):
        customer_phone_change(
            customer_id=brian.pk, phone="0733 222 445", actor=Actor.system(), reason="  "
        )


def test_a_customers_number_is_not_changed_to_another_customers_when_taken(lender_a) -> None:
    create(lender_a, **BRIAN)
    amina, _ = create(
        lender_a, full_name="Amina Wanjiru", phone="0712345678", national_id="10000001"
    )
    with pytest.raises(PhoneInUse, match=r"\(B\. O\*\*\*\)"):
        customer_phone_change(
            customer_id=amina.pk, phone="0722000111", actor=Actor.system(), reason="Typo."
        )
    amina.refresh_from_db()
    assert amina.phone == "+254712345678"


def _migration():
    return importlib.import_module(
        "apps.customers.migrations.0005_customer_phone_unique_per_lender"
    )


def test_the_migration_refuses_to_apply_and_names_the_customers_when_numbers_are_shared(
    lender_a,
) -> None:
    """Rows made before the rule: the unique index is dropped inside this test's transaction
    (PostgreSQL rolls the DDL back with it), two customers share a number, and the check
    that runs before the index is built names them, without the number, changing nothing."""
    from django.apps import apps

    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE customers_customer DROP CONSTRAINT customer_phone_unique_per_lender"
        )
    first = CustomerFactory(lender=lender_a, phone="+254722000111")
    second = CustomerFactory(lender=lender_a, phone="+254722000111")
    CustomerFactory(lender=LenderFactory(slug="lender-c"), phone="+254722000111")  # another lender
    with pytest.raises(Exception, match="share a mobile number") as refused:
        _migration().refuse_shared_numbers(apps, None)
    text = str(refused.value)
    assert f"lender {lender_a.slug}: customers {first.pk}, {second.pk} (number ending 111)" in text
    assert "customer_phone_change" in text
    assert "722000111" not in text
    assert Customer.objects.count() == 3


def test_the_migration_check_passes_when_every_number_is_one_customers_of_its_lender(
    lender_a,
) -> None:
    """One number at two lenders is two lenders' customers, not a shared number: the check
    (the index dropped, as above, so that any sharing could be stored) lets it through."""
    from django.apps import apps

    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE customers_customer DROP CONSTRAINT customer_phone_unique_per_lender"
        )
    CustomerFactory(lender=lender_a, phone="+254722000111")
    CustomerFactory(lender=LenderFactory(slug="lender-c"), phone="+254722000111")
    CustomerFactory(lender=lender_a)
    _migration().refuse_shared_numbers(apps, None)
