"""Writes for lenders and their back-office memberships."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction

from apps.accounts.models import User
from apps.audit.services import audit_event_record
from apps.core.actor import Actor
from apps.lenders.errors import LenderSlugTaken, UserAlreadyMember
from apps.lenders.events import LendersAction
from apps.lenders.models import Lender, LoanProduct, Membership


@transaction.atomic
def lender_create(
    *, name: str, slug: str, country: str, currency: str, timezone: str, locale: str, actor: Actor
) -> Lender:
    """Create a lender and open its audit chain. Emits ``lenders.lender.created``."""
    lender = Lender(
        name=name, slug=slug, country=country, currency=currency, timezone=timezone, locale=locale
    )
    lender.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            lender.save(force_insert=True)
    except IntegrityError as exc:
        raise LenderSlugTaken(slug=slug) from exc
    audit_event_record(
        actor=actor,
        action=LendersAction.LENDER_CREATED,
        target=lender,
        data={"new": {"name": name, "slug": slug, "country": country, "currency": currency,
                      "timezone": timezone, "locale": locale}},
    )  # fmt: skip
    return lender


@transaction.atomic
def agent_create(
    *,
    lender: Lender,
    username: str,
    email: str,
    password: str,
    role: Membership.Role,
    actor: Actor,
) -> User:
    """Create a back-office user of ``lender`` with ``role``.

    The user is staff (the admin is the back office) but never a superuser; they
    set up two-factor login at their first sign-in. Emits
    ``lenders.membership.created``.
    """
    user_model = get_user_model()
    user = user_model(username=username, email=email, is_staff=True, is_active=True)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return membership_create(user=user, lender=lender, role=role, actor=actor)


@transaction.atomic
def membership_create(*, user: User, lender: Lender, role: Membership.Role, actor: Actor) -> User:
    membership = Membership(user=user, lender=lender, role=role)
    membership.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            membership.save(force_insert=True)
    except IntegrityError as exc:
        raise UserAlreadyMember(user_id=user.pk) from exc
    audit_event_record(
        actor=actor,
        action=LendersAction.MEMBERSHIP_CREATED,
        target=membership,
        data={"new": {"user_id": user.pk, "role": str(role)}},
    )
    return user


_PRODUCT_TERMS = (
    "name", "installments", "frequency", "min_down_payment_percent", "interest_method",
    "interest_rate_percent", "origination_fee_percent", "late_fee_type", "late_fee_value",
    "late_fee_cap", "grace_days", "is_active",
)  # fmt: skip


@transaction.atomic
def loan_product_save(*, product: LoanProduct, actor: Actor) -> LoanProduct:
    """Create or change a loan product after validating its terms as a whole.

    Signed loans copied their terms, so a change affects new sales only.
    Emits ``lenders.loan_product.created`` or ``lenders.loan_product.changed``
    with the old and new value of each changed term.
    """
    product.full_clean()
    old = (
        LoanProduct.objects.select_for_update()
        .filter(pk=product.pk)
        .values(*_PRODUCT_TERMS)
        .first()
        if product.pk
        else None
    )
    product.save()
    new = {field: getattr(product, field) for field in _PRODUCT_TERMS}
    if old is None:
        action, data = LendersAction.LOAN_PRODUCT_CREATED, {"new": new}
    else:
        changed = [f for f in _PRODUCT_TERMS if old[f] != new[f]]
        if not changed:
            return product
        action = LendersAction.LOAN_PRODUCT_CHANGED
        data = {"old": {f: old[f] for f in changed}, "new": {f: new[f] for f in changed}}
    audit_event_record(actor=actor, action=action, target=product, data=data)
    return product
