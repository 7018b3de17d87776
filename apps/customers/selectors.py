from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from apps.customers.models import AccountReadingConsent, ConsentRecord, Customer, PlaidItem
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


def account_reading_consent_in_force(
    *, customer_id: int, at: datetime | None = None
) -> AccountReadingConsent | None:
    """The customer's consent to account reading in force at ``at`` (now): given, not
    expired, not revoked; the newest. None without one: no funds alert is acted on."""
    at = at or timezone.now()
    return (
        AccountReadingConsent.objects.filter(
            customer_id=customer_id, revoked_at__isnull=True, given_at__lte=at, expires_at__gt=at
        )
        .order_by("-given_at", "-id")
        .first()
    )


def account_reading_consent_by_reference(
    *, lender_id: int, reference: str
) -> AccountReadingConsent | None:
    """The lender's consent record a provider's alert names by ``reference`` (in force or
    not: the caller says why it is not), with its customer; None for an unknown one."""
    return (
        AccountReadingConsent.objects.select_related("customer")
        .filter(lender_id=lender_id, reference=reference)
        .first()
    )


def account_reading_consent_latest(*, customer_id: int) -> AccountReadingConsent | None:
    """The customer's newest consent to account reading, whatever its state (their page)."""
    return (
        AccountReadingConsent.objects.filter(customer_id=customer_id)
        .order_by("-given_at", "-id")
        .first()
    )


def customer_list_all(*, limit: int) -> QuerySet[Customer]:
    """Every lender's customers, by lender and name: unscoped, for the demo's front door
    only (the demo shows whom to log in as)."""
    return Customer.objects.select_related("lender").order_by("lender__name", "full_name")[:limit]


def plaid_item_by_item_id(*, lender_id: int, item_id: str) -> PlaidItem | None:
    """The lender's Plaid Item that Plaid names ``item_id`` in a webhook, with its consent
    and customer; None for one the lender never linked (another lender's is not its)."""
    return (
        PlaidItem.objects.select_related("consent__customer")
        .filter(lender_id=lender_id, item_id=item_id)
        .first()
    )
