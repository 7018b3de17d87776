"""Writes for retailers, shops, clerks, and the rows of a sale at the counter.

The sale's steps themselves (the customer, the phone, the plan, the consent, the loan and
the phone's record) are the collections app's: apps/collections/services/sales.py. It
writes each step's result on the sale through the ``sale_*_record`` functions here.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.core.errors import NotAllowed
from apps.core.money import quantize
from apps.lenders.models import Lender
from apps.retailers.errors import SalePriceInvalid
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
# A sale in progress is a draft: it records no audit event of its own. The customer, the
# consent, the loan and the phone it leads to each record theirs. The ``sale_*_record``
# writers take a sale locked by the caller (apps.retailers.locks) in the caller's transaction.


@transaction.atomic
def sale_start(*, clerk: Clerk, lender_id: int, actor: Actor) -> Sale:
    """A new sale at the clerk's shop for ``lender_id``, which the shop must sell for.

    Audit: none, a sale in progress is a draft.
    """
    if not clerk.shop.lenders.filter(pk=lender_id).exists():
        raise NotAllowed("This shop does not sell for that lender.")
    return Sale.objects.create(lender_id=lender_id, shop=clerk.shop, clerk=clerk.user)


def sale_customer_record(*, sale: Sale, customer_id: int) -> Sale:
    """Step 1's result, the customer; new terms need a new consent, so any is dropped.

    Audit: none, a sale in progress is a draft (the customer records its own).
    """
    sale.customer_id, sale.step = customer_id, Sale.Step.PHONE
    sale.consent_challenge = sale.consent = None
    sale.save()
    return sale


def sale_phone_record(
    *, sale: Sale, imei: str, brand: str, model_name: str, price: Decimal
) -> Sale:
    """Step 2's result, the phone (``imei`` already checked); SalePriceInvalid unless the
    price is positive and in the lender's currency's minor unit.

    Audit: none, a sale in progress is a draft.
    """
    quantized = quantize(price, sale.lender.currency)
    if quantized != price or price <= 0:
        raise SalePriceInvalid(currency=sale.lender.currency)
    sale.imei, sale.brand, sale.model_name, sale.price_amount = (
        imei,
        brand.strip(),
        model_name.strip(),
        price,
    )
    sale.step, sale.consent_challenge, sale.consent = Sale.Step.PLAN, None, None
    sale.save()
    return sale


def sale_plan_record(*, sale: Sale, product_id: int, down_payment: Decimal) -> Sale:
    """Step 3's result, the product and down payment (already quoted).

    Audit: none, a sale in progress is a draft.
    """
    sale.product_id, sale.down_payment_amount = product_id, down_payment
    sale.step, sale.consent_challenge, sale.consent = Sale.Step.CONSENT, None, None
    sale.save()
    return sale


def sale_consent_challenge_record(*, sale: Sale, challenge_id: int) -> Sale:
    """Step 4a's result, the code sent for the terms on screen.

    Audit: none, a sale in progress is a draft (the consent challenge records its own).
    """
    sale.consent_challenge_id = challenge_id
    sale.save(update_fields=["consent_challenge", "updated_at"])
    return sale


def sale_consent_record(*, sale: Sale, consent_id: int) -> Sale:
    """Step 4b's result, the customer's consent; the sale goes on to signing.

    Audit: none, a sale in progress is a draft (the consent records its own).
    """
    sale.consent_id, sale.step = consent_id, Sale.Step.SIGN
    sale.save(update_fields=["consent", "step", "updated_at"])
    return sale


def sale_consent_drop(*, sale: Sale) -> Sale:
    """The terms changed since the customer agreed: back to step 4 for a new consent.

    Audit: none, a sale in progress is a draft.
    """
    sale.consent, sale.consent_challenge, sale.step = None, None, Sale.Step.CONSENT
    sale.save(update_fields=["consent", "consent_challenge", "step", "updated_at"])
    return sale


def sale_signed_record(*, sale: Sale, loan_id: int, device_id: int) -> Sale:
    """Step 5's result, the signed loan and the phone's record; the QR code comes next.

    Audit: none, the loan and the phone record their own.
    """
    sale.loan_id, sale.device_id, sale.step = loan_id, device_id, Sale.Step.PROVISION
    sale.save(update_fields=["loan", "device", "step", "updated_at"])
    return sale
