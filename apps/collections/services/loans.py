"""Quotes and signing: the schedule a sale would get, the loan and its installments, and
the moves of a loan's status."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import AuditEntry, audit_event_record
from apps.collections.errors import (
    AmountNotInMinorUnits,
    ConsentAlreadyUsed,
    ConsentMissing,
    CurrencyMismatch,
    DevicePriceInvalid,
    DownPaymentTooLarge,
    DownPaymentTooSmall,
    FinancedAmountTooSmall,
    LoanTransitionNotAllowed,
    ProductNotAvailable,
    RestrictionPolicyMissing,
    ScheduleInvalid,
)
from apps.collections.events import CollectionsAction
from apps.collections.models import Installment, Loan
from apps.collections.schedule import Line, Schedule, Terms, build_schedule, smallest_financed
from apps.core.actor import Actor
from apps.core.errors import IdempotencyConflict, NotAllowed
from apps.core.money import Money, money_format, quantize
from apps.customers.models import ConsentRecord, Customer
from apps.lenders.models import LoanProduct
from apps.lenders.selectors import (
    lender_day_start,
    lender_local_date,
    restriction_policy_version_in_force,
)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Quote:
    product: LoanProduct
    device_price: Money
    down_payment: Money
    financed: Money
    start_date: date
    schedule: Schedule


def _product_terms(*, product: LoanProduct) -> Terms:
    """The schedule terms of ``product``, as a loan signed today copies them."""
    return Terms(
        installments=product.installments,
        frequency=product.frequency,
        interest_method=product.interest_method,
        interest_rate_percent=product.interest_rate_percent,
        origination_fee_percent=product.origination_fee_percent,
    )


def loan_financed_minimum(*, product: LoanProduct) -> Money:
    """The smallest amount ``product`` can finance with every installment owing more than
    zero (the back office shows it on the product)."""
    currency = product.lender.currency
    return Money(
        smallest_financed(terms=_product_terms(product=product), currency=currency), currency
    )


def loan_down_payment_minimum(*, product: LoanProduct, device_price: Money) -> Money:
    """The smallest down payment ``product`` takes on a phone of ``device_price``: its
    percentage of the price, rounded to the currency's minor unit (the counter states it
    before the clerk types one; ``loan_quote`` refuses less)."""
    currency = device_price.currency
    return Money(
        quantize(device_price.amount * product.min_down_payment_percent / 100, currency),
        currency,
    )


def require_minor_units(money: Money) -> None:
    if quantize(money.amount, money.currency) != money.amount:
        raise AmountNotInMinorUnits(amount=str(money.amount), currency=money.currency)


def loan_quote(
    *, product: LoanProduct, device_price: Money, down_payment: Money, start_date: date
) -> Quote:
    """The schedule a sale would get, computed exactly as signing does, without storing it.

    Refuses an amount too small for the product's terms (an installment would owe
    nothing) with ``FinancedAmountTooSmall``, which names the smallest amount they can
    finance: a loan is never signed with an installment of zero."""
    currency = product.lender.currency
    for money in (device_price, down_payment):
        if money.currency != currency:
            raise CurrencyMismatch(expected=currency, got=money.currency)
        require_minor_units(money)
    if not product.is_active:
        raise ProductNotAvailable(product_id=product.pk)
    if device_price.amount <= 0:
        raise DevicePriceInvalid()
    if down_payment.amount < 0:
        raise DownPaymentTooSmall()
    minimum = loan_down_payment_minimum(product=product, device_price=device_price).amount
    if down_payment.amount < minimum:
        raise DownPaymentTooSmall(
            _("The down payment must be at least %(minimum)s.")
            % {"minimum": money_format(minimum, currency)},
            minimum=str(minimum),
            currency=currency,
        )
    if down_payment.amount >= device_price.amount:
        raise DownPaymentTooLarge()
    financed = device_price.amount - down_payment.amount
    terms = _product_terms(product=product)
    schedule = build_schedule(terms=terms, financed=financed, currency=currency, start=start_date)
    if not schedule.every_installment_owes:
        raise FinancedAmountTooSmall(
            minimum=smallest_financed(terms=terms, currency=currency), currency=currency
        )
    return Quote(
        product=product,
        device_price=device_price,
        down_payment=down_payment,
        financed=Money(financed, currency),
        start_date=start_date,
        schedule=schedule,
    )


def _new_reference() -> str:
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I to misread at a counter
    return "SC-" + "".join(secrets.choice(alphabet) for _ in range(8))


@transaction.atomic
def loan_sign(
    *,
    customer: Customer,
    product: LoanProduct,
    device_price: Money,
    down_payment: Money,
    consent: ConsentRecord,
    actor: Actor,
    shop_id: int | None = None,
    signed_at: datetime | None = None,
    idempotency_key: str | None = None,
    external_id: str | None = None,
    schedule: Sequence[Line] | None = None,
) -> Loan:
    """Create an active loan and its installments in one transaction.

    ``schedule``, when given (a lender's own loan system sold the loan on its terms), is the
    loan's installments instead of the product's: checked by ``schedule_explicit_check``.

    The schedule starts on the signing date in the lender's timezone. The
    product's terms are copied onto the loan, and the lender's restriction
    policy version in force is pinned to it (a later policy change applies to
    new loans only). Idempotent on ``idempotency_key``
    per lender: the same key with the same sale returns the first loan, with a
    different sale raises IdempotencyConflict. Emits ``collections.loan.signed``.
    """
    if customer.lender_id != product.lender_id:
        raise NotAllowed("The customer and the product belong to different lenders.")
    if (consent.customer_id, consent.lender_id) != (customer.pk, product.lender_id):
        raise ConsentMissing(customer_id=customer.pk)
    lender = product.lender
    if idempotency_key:
        existing = Loan.objects.filter(lender=lender, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_sale_or_conflict(existing, customer, product, device_price, down_payment)
    policy_version = restriction_policy_version_in_force(lender_id=lender.pk)
    if policy_version is None:
        raise RestrictionPolicyMissing(lender_id=lender.pk)
    signed_at = signed_at or timezone.now()
    quote = loan_quote(
        product=product,
        device_price=device_price,
        down_payment=down_payment,
        start_date=lender_local_date(lender=lender, at=signed_at),
    )
    if schedule is not None:
        quote = replace(
            quote,
            schedule=schedule_explicit_check(
                lines=schedule, financed=quote.financed, start_date=quote.start_date
            ),
        )
    loan = Loan(
        lender=lender,
        customer=customer,
        product=product,
        policy_version=policy_version,
        consent=consent,
        shop_id=shop_id,
        reference=_new_reference(),
        status=Loan.Status.ACTIVE,
        currency=lender.currency,
        device_price_amount=device_price.amount,
        down_payment_amount=down_payment.amount,
        financed_amount=quote.financed.amount,
        start_date=quote.start_date,
        signed_at=signed_at,
        idempotency_key=idempotency_key or None,
        external_id=external_id or None,
        installments_count=len(quote.schedule.lines),
        frequency=product.frequency,
        interest_method=product.interest_method,
        interest_rate_percent=product.interest_rate_percent,
        origination_fee_percent=product.origination_fee_percent,
        grace_days=product.grace_days,
        late_fee_type=product.late_fee_type,
        late_fee_value=product.late_fee_value,
        late_fee_cap=product.late_fee_cap,
    )
    loan.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            loan.save(force_insert=True)
    except IntegrityError as exc:
        if idempotency_key:  # a concurrent submit with the same key won the race
            existing = Loan.objects.filter(lender=lender, idempotency_key=idempotency_key).first()
            if existing is not None:
                return _same_sale_or_conflict(
                    existing, customer, product, device_price, down_payment
                )
        raise ConsentAlreadyUsed(consent_id=consent.pk) from exc
    no_late_fee = product.late_fee_type == LoanProduct.LateFeeType.NONE
    Installment.objects.bulk_create(
        Installment(
            lender=lender,
            loan=loan,
            sequence=line.sequence,
            due_date=line.due_date,
            principal_amount=line.principal,
            interest_amount=line.interest,
            fee_amount=line.fee,
            # one that owes nothing is paid from the start (installment_paid_at_iff_nothing_owed)
            paid_at=None if line.principal + line.interest + line.fee else signed_at,
            late_from=lender_day_start(
                lender=lender, day=line.due_date + timedelta(days=loan.grace_days + 1)
            ),
            late_fee_charged=ZERO if no_late_fee else None,  # the fee run decides the others
        )
        for line in quote.schedule.lines
    )
    audit_event_record(
        actor=actor,
        action=CollectionsAction.LOAN_SIGNED,
        target=loan,
        data={
            "new": {
                "reference": loan.reference,
                "external_id": loan.external_id,  # the lender's own id; None at the counter
                "customer_id": customer.pk,
                "product_id": product.pk,
                "policy_version_id": policy_version.pk,
                "consent_id": consent.pk,
                "shop_id": shop_id,
                "currency": loan.currency,
                "device_price": device_price.amount,
                "down_payment": down_payment.amount,
                "financed": quote.financed.amount,
                "interest": quote.schedule.total_interest,
                "fees": quote.schedule.total_fee,
                "installments": len(quote.schedule.lines),
                "first_due": quote.schedule.lines[0].due_date,
            }
        },
    )
    return loan


def schedule_explicit_check(
    *, lines: Sequence[Line], financed: Money, start_date: date
) -> Schedule:
    """``lines`` as a schedule, if a loan may be signed on it: numbered 1 to n (at most 104),
    each due after the one before and after ``start_date``, each owing more than zero, every
    amount non-negative in the currency's minor units, the principal adding up to
    ``financed`` exactly. ScheduleInvalid otherwise."""
    currency = financed.currency
    ordered = sorted(lines, key=lambda line: line.sequence)
    due_dates = [line.due_date for line in ordered]
    amounts = [a for line in ordered for a in (line.principal, line.interest, line.fee)]
    if (
        not ordered
        or len(ordered) > 104
        or [line.sequence for line in ordered] != list(range(1, len(ordered) + 1))
        or due_dates[0] <= start_date
        or any(later <= earlier for earlier, later in pairwise(due_dates))
        or any(a < 0 or quantize(a, currency) != a for a in amounts)
        or any(line.total <= 0 for line in ordered)
        or sum((line.principal for line in ordered), ZERO) != financed.amount
    ):
        raise ScheduleInvalid(financed=str(financed.amount), currency=currency)
    return Schedule(currency=currency, financed=financed.amount, lines=tuple(ordered))


def _same_sale_or_conflict(
    loan: Loan, customer: Customer, product: LoanProduct, device_price: Money, down_payment: Money
) -> Loan:
    same = (
        loan.customer_id,
        loan.product_id,
        loan.device_price_amount,
        loan.down_payment_amount,
    ) == (customer.pk, product.pk, device_price.amount, down_payment.amount)
    if not same:
        raise IdempotencyConflict(loan_id=loan.pk)
    return loan


def loan_transition(*, loan: Loan, to: str, actor: Actor, reason: str = "") -> AuditEntry:
    """Move ``loan`` to ``to`` if the transition table allows it; return its audit entry."""
    if not loan.can_become(to):
        raise LoanTransitionNotAllowed(loan_id=loan.pk, status=loan.status, to=to)
    old = loan.status
    loan.status = to
    loan.paid_off_at = timezone.now() if to == Loan.Status.PAID_OFF else None
    if to == Loan.Status.PAID_OFF and loan.collateral_released_at is None:
        loan.collateral_released_at = loan.paid_off_at  # payoff sets the phone free for good
    loan.save(update_fields=["status", "paid_off_at", "collateral_released_at", "updated_at"])
    action = (
        CollectionsAction.LOAN_PAID_OFF
        if to == Loan.Status.PAID_OFF
        else CollectionsAction.LOAN_STATUS_CHANGED
    )
    return AuditEntry(
        actor=actor,
        action=action,
        target=loan,
        data={"old": {"status": old}, "new": {"status": to}},
        reason=reason,
    )
