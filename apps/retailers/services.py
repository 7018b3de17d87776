"""Writes for retailers, shops, clerks, and the sale at the counter."""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from apps.audit.services import audit_event_record
from apps.collections.errors import ConsentMissing, ProductNotAvailable, RestrictionPolicyMissing
from apps.collections.services import Quote, loan_quote, loan_sign
from apps.core.actor import Actor
from apps.core.errors import NotAllowed, NotFound
from apps.core.money import Money, quantize
from apps.customers.consent import (
    CONSENT_TEXT_VERSION,
    ConsentTerms,
    consent_text_build,
    consent_text_sha256,
)
from apps.customers.errors import ConsentCodeExpired, ConsentTextChanged
from apps.customers.services import consent_code_send, consent_confirm, customer_get_or_create
from apps.devices.errors import ImeiInUse
from apps.devices.selectors import device_imei_in_use
from apps.devices.services import device_register, imei_normalise
from apps.lenders.models import Lender
from apps.lenders.selectors import (
    lender_local_date,
    loan_product_list_active,
    restriction_policy_version_in_force,
)
from apps.retailers.errors import SaleAlreadySigned, SalePriceInvalid, SaleStepMissing
from apps.retailers.events import RetailersAction
from apps.retailers.models import Clerk, Retailer, Sale, Shop


@transaction.atomic
def shop_create(
    *,
    retailer_name: str,
    name: str,
    address: str,
    timezone: str,
    lenders: list[Lender],
    actor: Actor,
    support_phone: str = "",
) -> Shop:
    """A shop (and its retailer, found by name or created) selling for ``lenders``."""
    retailer = Retailer.objects.filter(name=retailer_name).first() or Retailer.objects.create(
        name=retailer_name
    )
    shop = Shop(
        retailer=retailer,
        name=name,
        address=address,
        timezone=timezone,
        support_phone=support_phone,
    )
    shop.full_clean(exclude=["retailer"])
    shop.save()
    shop.lenders.set(lenders)
    for lender in lenders:
        audit_event_record(
            actor=actor,
            action=RetailersAction.SHOP_CREATED,
            target=shop,
            lender_id=lender.pk,
            data={"new": {"name": name, "retailer": retailer_name}},
        )
    return shop


@transaction.atomic
def clerk_create(*, shop: Shop, username: str, password: str, actor: Actor) -> Clerk:
    """A clerk at ``shop``: logs in to the point-of-sale pages only (never staff)."""
    user = get_user_model()(username=username, is_staff=False, is_superuser=False)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    clerk = Clerk.objects.create(user=user, shop=shop)
    for lender in shop.lenders.all():
        audit_event_record(
            actor=actor,
            action=RetailersAction.CLERK_CREATED,
            target=clerk,
            lender_id=lender.pk,
            data={"new": {"user_id": user.pk, "shop_id": shop.pk}},
        )
    return clerk


def demo_counter(lender: Lender) -> tuple[Shop, Clerk]:
    """The demo's shop and clerk for ``lender`` (created once, with a throwaway password)."""
    shop = Shop.objects.filter(lenders=lender).first()
    if shop is None:
        shop = shop_create(
            retailer_name="Demo Phones Ltd",
            name=f"{lender.name} counter",
            address="Moi Avenue 1, Nairobi",
            timezone=lender.timezone,
            lenders=[lender],
            actor=Actor.system(),
        )
    clerk = Clerk.objects.filter(shop=shop).first()
    if clerk is None:
        clerk = clerk_create(
            shop=shop,
            username=f"clerk-{lender.slug}",
            password=secrets.token_urlsafe(16),
            actor=Actor.system(),
        )
    return shop, clerk


# --- the sale at the counter ---------------------------------------------------------


def _sale_lock(*, sale_id: int, clerk: Clerk) -> Sale:
    sale = (
        Sale.objects.select_for_update(of=("self",))
        .filter(pk=sale_id, shop_id=clerk.shop_id)
        .first()
    )
    if sale is None:
        raise NotFound(sale_id=sale_id)
    return sale


def _require_open(sale: Sale) -> None:
    if sale.loan_id is not None:
        raise SaleAlreadySigned(loan_id=sale.loan_id)


@transaction.atomic
def sale_start(*, clerk: Clerk, lender_id: int, actor: Actor) -> Sale:
    if not clerk.shop.lenders.filter(pk=lender_id).exists():
        raise NotAllowed("This shop does not sell for that lender.")
    return Sale.objects.create(lender_id=lender_id, shop=clerk.shop, clerk=clerk.user)


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
) -> Sale:
    """Step 1: the customer, found by national id at this lender or created."""
    sale = _sale_lock(sale_id=sale_id, clerk=clerk)
    _require_open(sale)
    customer, _ = customer_get_or_create(
        lender=sale.lender,
        full_name=full_name,
        phone=phone,
        national_id=national_id,
        date_of_birth=date_of_birth,
        actor=actor,
    )
    sale.customer, sale.step = customer, Sale.Step.PHONE
    sale.consent_challenge = sale.consent = None  # new terms need a new consent
    sale.save()
    return sale


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
    sale = _sale_lock(sale_id=sale_id, clerk=clerk)
    _require_open(sale)
    if sale.customer_id is None:
        raise SaleStepMissing()
    number = imei_normalise(imei)
    if device_imei_in_use(imei=number):
        raise ImeiInUse(imei_last4=number[-4:])
    quantized = quantize(price, sale.lender.currency)
    if quantized != price or price <= 0:
        raise SalePriceInvalid(currency=sale.lender.currency)
    sale.imei, sale.brand, sale.model_name, sale.price_amount = (
        number,
        brand.strip(),
        model_name.strip(),
        price,
    )
    sale.step, sale.consent_challenge, sale.consent = Sale.Step.PLAN, None, None
    sale.save()
    return sale


@transaction.atomic
def sale_plan_set(
    *, sale_id: int, clerk: Clerk, product_id: int, down_payment: Decimal, actor: Actor
) -> Sale:
    """Step 3: the product and down payment, checked by computing the quote."""
    sale = _sale_lock(sale_id=sale_id, clerk=clerk)
    _require_open(sale)
    if sale.customer_id is None or sale.price_amount is None:
        raise SaleStepMissing()
    product = loan_product_list_active(lender_id=sale.lender_id).filter(pk=product_id).first()
    if product is None:
        raise ProductNotAvailable(product_id=product_id)
    sale.product, sale.down_payment_amount = product, down_payment
    sale_quote(sale=sale)  # raises for a down payment out of bounds
    sale.step, sale.consent_challenge, sale.consent = Sale.Step.CONSENT, None, None
    sale.save()
    return sale


def sale_quote(*, sale: Sale) -> Quote:
    currency = sale.lender.currency
    return loan_quote(
        product=sale.product,
        device_price=Money(sale.price_amount, currency),
        down_payment=Money(sale.down_payment_amount, currency),
        start_date=lender_local_date(lender=sale.lender),
    )


def sale_consent_text(*, sale: Sale) -> str:
    version = restriction_policy_version_in_force(lender_id=sale.lender_id)
    if version is None:
        raise RestrictionPolicyMissing(lender_id=sale.lender_id)
    quote = sale_quote(sale=sale)
    first = quote.schedule.lines[0]
    return consent_text_build(
        lender_name=sale.lender.name,
        customer_name=sale.customer.full_name,
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
        locale=sale.customer.locale,
    )


@transaction.atomic
def sale_consent_send(*, sale_id: int, clerk: Clerk, actor: Actor) -> Sale:
    """Step 4a: send the customer a code for the terms on screen."""
    sale = _sale_lock(sale_id=sale_id, clerk=clerk)
    _require_open(sale)
    if sale.product_id is None:
        raise SaleStepMissing()
    sale.consent_challenge = consent_code_send(
        customer=sale.customer, text=sale_consent_text(sale=sale), actor=actor
    )
    sale.save(update_fields=["consent_challenge", "updated_at"])
    return sale


def sale_consent_confirm(*, sale_id: int, clerk: Clerk, code: str, actor: Actor) -> Sale:
    """Step 4b: the customer's code; records their consent to the exact text shown."""
    with transaction.atomic():
        sale = _sale_lock(sale_id=sale_id, clerk=clerk)
        _require_open(sale)
        if sale.consent_challenge_id is None:
            raise ConsentCodeExpired()
        text = sale_consent_text(sale=sale)
    # consent_confirm keeps a wrong code's failure on the record, so it owns its transaction
    record = consent_confirm(
        challenge_id=sale.consent_challenge_id,
        code=code,
        text=text,
        text_version=CONSENT_TEXT_VERSION,
        locale=sale.customer.locale,
        clerk_id=clerk.user_id,
        shop_id=clerk.shop_id,
        actor=actor,
    )
    with transaction.atomic():
        sale = _sale_lock(sale_id=sale_id, clerk=clerk)
        _require_open(sale)
        if sale.consent_challenge_id != record.challenge_id:  # the sale changed meanwhile
            raise ConsentCodeExpired()
        sale.consent, sale.step = record, Sale.Step.SIGN
        sale.save(update_fields=["consent", "step", "updated_at"])
    return sale


@transaction.atomic
def sale_sign(*, sale_id: int, clerk: Clerk, actor: Actor) -> Sale:
    """Step 5: sign the loan and record the phone, in one transaction.

    Locks the sale first, so a double submit or a retry finds the loan already
    signed and returns the sale unchanged: one loan per sale.
    """
    sale = _sale_lock(sale_id=sale_id, clerk=clerk)
    if sale.loan_id is not None:
        return sale
    if sale.consent_id is None:
        raise ConsentMissing()
    # The loan must be the one the customer agreed to: a new day (first due
    # date), a new policy version or a changed product changes the text.
    if consent_text_sha256(sale_consent_text(sale=sale)) != sale.consent.text_sha256:
        sale.consent, sale.consent_challenge, sale.step = None, None, Sale.Step.CONSENT
        sale.save(update_fields=["consent", "consent_challenge", "step", "updated_at"])
        raise ConsentTextChanged()
    currency = sale.lender.currency
    loan = loan_sign(
        customer=sale.customer,
        product=sale.product,
        consent=sale.consent,
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
    sale.loan, sale.device, sale.step = loan, device, Sale.Step.PROVISION
    sale.save(update_fields=["loan", "device", "step", "updated_at"])
    return sale
