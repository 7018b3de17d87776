from collections.abc import Iterable

from django.db import connection

from apps.customers.models import ConsentRecord, Customer
from apps.customers.sql import CUSTOMER_LOCALES


def customer_locales(*, customer_ids: Iterable[int]) -> dict[int, str]:
    """customer id -> the language the customer reads (for what the phone shows)."""
    # one array parameter: a sweep asks for thousands of customers at once
    with connection.cursor() as cursor:
        cursor.execute(CUSTOMER_LOCALES, [list(customer_ids)])
        return dict(cursor.fetchall())


def consent_record_for_loan(*, loan_id: int) -> ConsentRecord | None:
    """The consent the loan was signed under (a loan holds its consent record)."""
    return ConsentRecord.objects.filter(loan__id=loan_id).first()


def customer_get_for_session(*, lender_id: int, customer_id: object) -> Customer | None:
    """The customer a session names, if it is one of ``lender_id``'s; else None."""
    if not isinstance(customer_id, int):
        return None
    return Customer.objects.filter(pk=customer_id, lender_id=lender_id).first()


def customer_by_phone(*, lender_id: int, phone: str) -> Customer | None:
    """The lender's customer with the E.164 number ``phone`` (a number is one customer's per
    lender), or None."""
    return Customer.objects.filter(lender_id=lender_id, phone=phone).first()
