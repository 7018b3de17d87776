"""Loans created from a lender's own loan system (the lender API), with the rules the
counter's sale keeps: the customer found or created as at the counter, the consent recorded
(from the lender's channel), the product's terms and the policy in force, the phone free."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime

from django.db import connection, transaction

from apps.collections.errors import ProductNotAvailable
from apps.collections.models import Loan
from apps.collections.schedule import Line
from apps.collections.services.loans import loan_sign
from apps.collections.sql import ADVISORY_LOCK
from apps.core.actor import Actor
from apps.core.errors import IdempotencyConflict
from apps.core.money import Money
from apps.customers.services import consent_record_from_lender, customer_get_or_create
from apps.devices.models import Device
from apps.devices.selectors import device_list_for_loan
from apps.devices.services import device_register
from apps.lenders.models import Lender
from apps.lenders.selectors import loan_product_list_active

_EXTERNAL_ID_LOCK_NAMESPACE = 7302  # pg_advisory_xact_lock(namespace, key): one loan per id


@dataclass(frozen=True, slots=True)
class CustomerIn:
    full_name: str
    phone: str
    national_id: str
    date_of_birth: date | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentIn:
    text: str
    text_sha256: str
    text_version: str
    method: str
    given_at: datetime


@dataclass(frozen=True, slots=True)
class LoanCreated:
    loan: Loan
    device: Device
    created: bool


def _external_id_lock(*, lender_id: int, external_id: str) -> None:
    digest = hashlib.sha256(f"{lender_id}\x00{external_id}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            ADVISORY_LOCK,
            [_EXTERNAL_ID_LOCK_NAMESPACE, int.from_bytes(digest[:4], "big", signed=True)],
        )


@transaction.atomic
def loan_create_for_lender(
    *,
    lender_id: int,
    external_id: str,
    customer: CustomerIn,
    product_id: int,
    device_price: Money,
    down_payment: Money,
    imei: str,
    brand: str,
    model_name: str,
    consent: ConsentIn,
    actor: Actor,
    schedule: Sequence[Line] | None = None,
) -> LoanCreated:
    """Sign a loan the lender's loan system sold, under its ``external_id``, and record its
    phone pending enrollment, in one transaction.

    The customer is found or created as at the counter (``customer_get_or_create``: the
    national id and the phone on record must agree), the consent is recorded as the
    lender's channel gave it (``consent_record_from_lender``), the loan is signed by
    ``loan_sign`` (the product's terms, the policy version in force, the country's money
    rules; ``schedule``, the lender's own installments, instead of the product's when given)
    and the phone by ``device_register`` (an IMEI bound to an open loan is refused).

    Idempotent on (lender, ``external_id``): the transaction-scoped advisory lock of the
    id serialises two creates of it; a repeat with the same customer, product and amounts
    returns the first loan (``created`` False), with anything else IdempotencyConflict.
    Locks: the id's advisory lock, then what ``loan_sign`` and ``device_register`` take.
    """
    _external_id_lock(lender_id=lender_id, external_id=external_id)
    existing = (
        Loan.objects.filter(lender_id=lender_id, external_id=external_id)
        .select_related("customer")
        .first()
    )
    lender = Lender.objects.get(pk=lender_id)
    product = loan_product_list_active(lender_id=lender_id).filter(pk=product_id).first()
    if product is None:
        raise ProductNotAvailable(product_id=product_id)
    if existing is not None:
        device = device_list_for_loan(loan_id=existing.pk, lender_id=lender_id).first()
        same = (
            existing.product_id,
            existing.device_price_amount,
            existing.down_payment_amount,
            device.imei if device else None,
        ) == (product.pk, device_price.amount, down_payment.amount, imei)
        if not same or device is None:
            raise IdempotencyConflict(external_id=external_id, loan_id=existing.pk)
        return LoanCreated(loan=existing, device=device, created=False)
    person, _created = customer_get_or_create(lender=lender, actor=actor, **asdict(customer))
    record = consent_record_from_lender(customer=person, actor=actor, **asdict(consent))
    loan = loan_sign(
        customer=person,
        product=product,
        device_price=device_price,
        down_payment=down_payment,
        consent=record,
        actor=actor,
        external_id=external_id,
        schedule=schedule,
    )
    # the loan was created in this transaction: no other can see or lock it before commit
    device = device_register(
        loan_id=loan.pk,
        lender_id=lender_id,
        imei=imei,
        brand=brand,
        model_name=model_name,
        actor=actor,
    )
    return LoanCreated(loan=loan, device=device, created=True)
