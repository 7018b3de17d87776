"""Writes for customers."""

from __future__ import annotations

from datetime import date

import phonenumbers
from django.db import transaction

from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.customers.errors import PhoneInvalid
from apps.customers.events import CustomersAction
from apps.customers.models import Customer
from apps.lenders.models import Lender


def phone_to_e164(*, phone: str, country: str) -> str:
    """Parse a number as dialled in ``country`` (or in international form) into E.164."""
    try:
        parsed = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException as exc:
        raise PhoneInvalid(phone_country=country) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneInvalid(phone_country=country)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@transaction.atomic
def customer_get_or_create(
    *,
    lender: Lender,
    full_name: str,
    phone: str,
    national_id: str,
    actor: Actor,
    date_of_birth: date | None = None,
    locale: str | None = None,
) -> tuple[Customer, bool]:
    """The lender's customer with this national id, created if new (never duplicated).

    Locks the lender row so two clerks entering the same person at once make
    one customer. Emits ``customers.customer.created`` for a new customer.
    """
    Lender.objects.select_for_update().get(pk=lender.pk)
    national_id = "".join(national_id.split()).upper()
    existing = Customer.objects.filter(lender=lender, national_id=national_id).first()
    if existing is not None:
        return existing, False
    customer = Customer(
        lender=lender,
        full_name=" ".join(full_name.split()),
        phone=phone_to_e164(phone=phone, country=lender.country),
        national_id=national_id,
        date_of_birth=date_of_birth,
        locale=locale or lender.locale,
    )
    customer.full_clean()
    customer.save()
    audit_event_record(
        actor=actor,
        action=CustomersAction.CUSTOMER_CREATED,
        target=customer,
        data={"new": {"id": customer.pk}},
    )
    return customer, True
