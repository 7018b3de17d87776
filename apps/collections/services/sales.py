"""The sale at the counter, step by step: the customer, the phone, the plan, the consent by
a code, then the loan and the phone's record in one transaction.

Each step locks the sale (apps.retailers.locks) before anything else, calls the services of
the apps below (customers, devices, the loan's own), and writes its result on the sale
through apps.retailers.services.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction

from apps.collections.errors import ConsentMissing, ProductNotAvailable, RestrictionPolicyMissing
from apps.collections.services.loans import (
    Quote,
    loan_down_payment_minimum,
    loan_quote,
    loan_sign,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.customers.consent import (
    CONSENT_TEXT_VERSION,
    ConsentTerms,
    consent_text_build,
    consent_text_sha256,
)
from apps.customers.errors import ConsentCodeExpired, ConsentTextChanged
from apps.customers.models import Customer
from apps.customers.services import consent_code_send, consent_confirm, customer_get_or_create
from apps.devices.errors import ImeiInUse
from apps.devices.selectors import device_imei_in_use
from apps.devices.services import device_register, imei_normalise
from apps.lenders.models import LoanProduct
from apps.lenders.selectors import (
    lender_local_date,
    loan_product_list_active,
    restriction_policy_version_in_force,
)
from apps.retailers.errors import SaleStepMissing
from apps.retailers.locks import sale_lock, sale_lock_open
from apps.retailers.models import Clerk, Sale
from apps.retailers.services import (
    sale_consent_challenge_record,
    sale_consent_drop,
    sale_consent_record,
    sale_customer_record,
    sale_phone_record,
    sale_plan_record,
    sale_signed_record,
)


@transaction.atomic
def sale_customer_set(
    *,
    sale_id: int,
    clerk: Clerk,
    full_name: str,
    phone: str,
    national_id: str,
    date_of_birth: date | None,
    actor: Actor,
    locale: str | None = None,
) -> Sale:
    """Step 1: the customer, found by national id at this lender or created, and the
    language they chose: the terms, the code's SMS and every later message use it."""
    sale = sale_lock_open(sale_id=sale_id, clerk=clerk)
    customer, _ = customer_get_or_create(
        lender=sale.lender,
        full_name=full_name,
        phone=phone,
        national_id=national_id,
        date_of_birth=date_of_birth,
        locale=locale or None,
        actor=actor,
    )
    return sale_customer_record(sale=sale, customer_id=customer.pk)


@transaction.atomic
def sale_phone_set(
    *,
    sale_id: int,
    clerk: Clerk,
    imei: str,
    brand: str,
    model_name: str,
    price: Decimal,
    actor: Actor,
) -> Sale:
    """Step 2: the phone; an IMEI that is collateral of an open loan is refused with the reason."""
    sale = sale_lock_open(sale_id=sale_id, clerk=clerk)
    if sale.customer_id is None:
        raise SaleStepMissing()
    number = imei_normalise(imei)
    if device_imei_in_use(imei=number):
        raise ImeiInUse(imei_last4=number[-4:])
    return sale_phone_record(
        sale=sale, imei=number, brand=brand, model_name=model_name, price=price
    )


@transaction.atomic
def sale_plan_set(
    *, sale_id: int, clerk: Clerk, product_id: int, down_payment: Decimal, actor: Actor
) -> Sale:
    """Step 3: the product and down payment, checked by computing the quote."""
    sale = sale_lock_open(sale_id=sale_id, clerk=clerk)
    if sale.customer_id is None or sale.price_amount is None:
        raise SaleStepMissing()
    # the quote refuses a down payment out of bounds
    quote = sale_plan_quote(sale=sale, product_id=product_id, down_payment=down_payment)
    return sale_plan_record(sale=sale, product_id=quote.product.pk, down_payment=down_payment)


def _product(*, sale: Sale, product_id: int) -> LoanProduct:
    """The lender's active ``product_id``; ProductNotAvailable otherwise."""
    product = loan_product_list_active(lender_id=sale.lender_id).filter(pk=product_id).first()
    if product is None:
        raise ProductNotAvailable(product_id=product_id)
    return product


def sale_down_payment_minimum(*, sale: Sale, product_id: int) -> Money:
    """The smallest down payment ``product_id`` takes on the sale's phone (step 3 states it)."""
    if sale.price_amount is None:
        raise SaleStepMissing()
    return loan_down_payment_minimum(
        product=_product(sale=sale, product_id=product_id),
        device_price=Money(sale.price_amount, sale.lender.currency),
    )


def sale_plan_quote(*, sale: Sale, product_id: int, down_payment: Decimal) -> Quote:
    """The loan step 3 would lead to with ``product_id`` and ``down_payment``, computed by
    the schedule code signing uses, stored nowhere: the plan page quotes it as the clerk
    types, and step 3 itself checks it. Refuses as ``loan_quote`` does."""
    if sale.customer_id is None or sale.price_amount is None:
        raise SaleStepMissing()
    product = _product(sale=sale, product_id=product_id)
    return _quote(sale=sale, product=product, down_payment=down_payment)


def _customer(sale: Sale) -> Customer:
    """The sale's customer; SaleStepMissing before step 1 (the pages never ask then)."""
    if sale.customer is None:
        raise SaleStepMissing()
    return sale.customer


def _quote(*, sale: Sale, product: LoanProduct | None, down_payment: Decimal | None) -> Quote:
    """The quote for the sale's phone with ``product`` and ``down_payment``; SaleStepMissing
    without them (the pages never ask before step 3)."""
    if sale.price_amount is None or product is None or down_payment is None:
        raise SaleStepMissing()
    currency = sale.lender.currency
    return loan_quote(
        product=product,
        device_price=Money(sale.price_amount, currency),
        down_payment=Money(down_payment, currency),
        start_date=lender_local_date(lender=sale.lender),
    )


def sale_quote(*, sale: Sale) -> Quote:
    """The loan the sale would sign today: its schedule and amounts."""
    return _quote(sale=sale, product=sale.product, down_payment=sale.down_payment_amount)


def sale_consent_text(*, sale: Sale) -> str:
    """The terms the customer agrees to, in their language, for the loan signed today under
    the lender's restriction policy in force."""
    version = restriction_policy_version_in_force(lender_id=sale.lender_id)
    if version is None:
        raise RestrictionPolicyMissing(lender_id=sale.lender_id)
    quote = sale_quote(sale=sale)
    first = quote.schedule.lines[0]
    customer = _customer(sale)
    return consent_text_build(
        lender_name=sale.lender.name,
        customer_name=customer.full_name,
        terms=ConsentTerms(
            device_price=quote.device_price,
            down_payment=quote.down_payment,
            financed=quote.financed,
            installments=len(quote.schedule.lines),
            first_due_date=first.due_date,
            first_amount=first.total,
            total=quote.schedule.total,
        ),
        policy_version=version,
        locale=customer.locale,
        emergency_grace_hours=sale.lender.emergency_grace_hours,
    )


@transaction.atomic
def sale_consent_send(*, sale_id: int, clerk: Clerk, actor: Actor) -> Sale:
    """Step 4a: send the customer a code for the terms on screen."""
    sale = sale_lock_open(sale_id=sale_id, clerk=clerk)
    if sale.product_id is None:
        raise SaleStepMissing()
    challenge = consent_code_send(
        customer=_customer(sale), text=sale_consent_text(sale=sale), actor=actor
    )
    return sale_consent_challenge_record(sale=sale, challenge_id=challenge.pk)


def sale_consent_confirm(*, sale_id: int, clerk: Clerk, code: str, actor: Actor) -> Sale:
    """Step 4b: the customer's code; records their consent to the exact text shown."""
    with transaction.atomic():
        sale = sale_lock_open(sale_id=sale_id, clerk=clerk)
        if sale.consent_challenge_id is None:
            raise ConsentCodeExpired()
        text = sale_consent_text(sale=sale)
    # consent_confirm keeps a wrong code's failure on the record, so it owns its transaction
    record = consent_confirm(
        challenge_id=sale.consent_challenge_id,
        code=code,
        text=text,
        text_version=CONSENT_TEXT_VERSION,
        locale=_customer(sale).locale,
        clerk_id=clerk.user_id,
        shop_id=clerk.shop_id,
        actor=actor,
    )
    with transaction.atomic():
        sale = sale_lock_open(sale_id=sale_id, clerk=clerk)
        if sale.consent_challenge_id != record.challenge_id:  # the sale changed meanwhile
            raise ConsentCodeExpired()
        return sale_consent_record(sale=sale, consent_id=record.pk)


@transaction.atomic
def sale_sign(*, sale_id: int, clerk: Clerk, actor: Actor) -> Sale:
    """Step 5: sign the loan and record the phone, in one transaction.

    Locks the sale first, so a double submit or a retry finds the loan already
    signed and returns the sale unchanged: one loan per sale.
    """
    sale = sale_lock(sale_id=sale_id, clerk=clerk)
    if sale.loan_id is not None:
        return sale
    consent = sale.consent
    if consent is None:
        raise ConsentMissing()
    # The loan must be the one the customer agreed to: a new day (first due
    # date), a new policy version or a changed product changes the text.
    if consent_text_sha256(sale_consent_text(sale=sale)) != consent.text_sha256:
        sale_consent_drop(sale=sale)
        raise ConsentTextChanged()
    product = sale.product
    if product is None or sale.price_amount is None or sale.down_payment_amount is None:
        raise SaleStepMissing()  # never past a consent, whose text quoted them
    currency = sale.lender.currency
    loan = loan_sign(
        customer=_customer(sale),
        product=product,
        consent=consent,
        shop_id=sale.shop_id,
        device_price=Money(sale.price_amount, currency),
        down_payment=Money(sale.down_payment_amount, currency),
        idempotency_key=f"sale-{sale.public_id}",
        actor=actor,
    )
    # the loan was created in this transaction: no other can see or lock it before commit
    device = device_register(
        loan_id=loan.pk,
        lender_id=loan.lender_id,
        imei=sale.imei,
        brand=sale.brand,
        model_name=sale.model_name,
        actor=actor,
    )
    return sale_signed_record(sale=sale, loan_id=loan.pk, device_id=device.pk)
