import pytest

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.customers.errors import NationalIdInvalid, PhoneInvalid
from apps.customers.models import Customer
from apps.customers.national_ids import national_id_normalise
from apps.customers.services import customer_get_or_create

pytestmark = pytest.mark.django_db


def create(lender, **kwargs):
    values = {
        "full_name": "  Amina   Wanjiru ",
        "phone": "0712 345 678",
        "national_id": "2345 6781",
    } | kwargs
    return customer_get_or_create(lender=lender, actor=Actor.system(), **values)


def test_a_customer_is_found_by_national_id_not_duplicated(lender_a) -> None:
    first, created = create(lender_a)
    again, created_again = create(lender_a, full_name="Amina W.", phone="+254 712 345 678")
    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert (first.full_name, first.phone, first.national_id) == (
        "Amina Wanjiru",
        "+254712345678",
        "23456781",
    )
    assert AuditEvent.objects.filter(action="customers.customer.created").count() == 1


def test_phone_numbers_are_checked_for_the_lenders_country(lender_a) -> None:
    with pytest.raises(PhoneInvalid):
        create(lender_a, phone="12345")


def test_a_mexican_lender_validates_the_curp(lender_b) -> None:
    customer, _ = create(lender_b, phone="55 1234 5678", national_id="BOXW310820HNERXN09")
    assert customer.national_id == "BOXW310820HNERXN09"
    with pytest.raises(NationalIdInvalid):
        create(lender_b, phone="55 1234 5678", national_id="BOXW310820HNERXN08")


def test_a_national_id_alone_reveals_nobody(lender_a) -> None:
    from apps.customers.errors import CustomerDetailsMismatch

    create(lender_a)
    with pytest.raises(CustomerDetailsMismatch):
        create(lender_a, full_name="Someone Else", phone="0722 000 111")


@pytest.mark.parametrize("number", ["1234567", "12345678", "1234 5678"])
def test_a_kenyan_national_id_of_7_or_8_digits_is_accepted(lender_a, number) -> None:
    customer, _ = create(lender_a, national_id=number)
    assert customer.national_id == number.replace(" ", "")


@pytest.mark.parametrize("number", ["123456", "123456789", "A1234567", "1234567-8"])
def test_a_kenyan_national_id_is_refused_naming_the_rule_when_not_7_or_8_digits(
    lender_a, number
) -> None:
    with pytest.raises(NationalIdInvalid, match="7 or 8 digits"):
        create(lender_a, national_id=number)
    assert not Customer.objects.exists()


def test_a_country_without_a_rule_takes_the_number_as_typed(lender_a) -> None:
    assert national_id_normalise(value="ab 12-3", country="GH") == "AB12-3"


def test_a_customer_found_again_takes_the_language_given_and_it_is_audited(lender_a) -> None:
    amina, _ = create(lender_a)
    assert amina.locale == lender_a.locale  # the lender's when none is given
    create(lender_a)
    amina.refresh_from_db()
    assert amina.locale == lender_a.locale  # none given: unchanged
    again, created = create(lender_a, locale="es")
    amina.refresh_from_db()
    assert (created, again.locale, amina.locale) == (False, "es", "es")
    event = AuditEvent.objects.get(action="customers.customer.locale_changed")
    assert (event.data, event.target_id) == (
        {"old": {"locale": lender_a.locale}, "new": {"locale": "es"}},
        str(amina.pk),
    )
    create(lender_a, locale="es")  # the same again: nothing to record
    assert AuditEvent.objects.filter(action="customers.customer.locale_changed").count() == 1
