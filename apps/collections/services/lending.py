"""Writes for lending: quotes, signing, payments and their allocation, late fees, webhooks."""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import AuditEntry, audit_event_record, audit_events_record
from apps.collections.allocation import (
    COMPONENTS,
    Allocated,
    InstallmentDue,
    PaymentIn,
    allocate,
    allocate_next,
    ledger_delta,
)
from apps.collections.errors import (
    AmountNotInMinorUnits,
    ConsentAlreadyUsed,
    ConsentMissing,
    CurrencyMismatch,
    DevicePriceInvalid,
    DownPaymentTooLarge,
    DownPaymentTooSmall,
    FinancedAmountTooSmall,
    LoanNotPayable,
    LoanTransitionNotAllowed,
    ProductNotAvailable,
    ReceivedBeforeSigning,
    RestrictionPolicyMissing,
    ReversalExceedsPayment,
)
from apps.collections.events import CollectionsAction
from apps.collections.locks import (
    installment_lock_for_loan,
    installment_lock_list_for_loan,
    loan_lock,
    loan_lock_by_reference,
    loan_phones_lock,
)
from apps.collections.models import (
    UNPAID_SQL,
    Allocation,
    Installment,
    Loan,
    LoanStageChange,
    Payment,
    PaymentReversal,
    Stage,
    WebhookEvent,
)
from apps.collections.schedule import Schedule, Terms, build_schedule, smallest_financed
from apps.collections.services.restriction import loan_stage_settle
from apps.core.actor import Actor
from apps.core.errors import DomainError, IdempotencyConflict, NotAllowed
from apps.core.money import Money, minor_units, quantize
from apps.core.outbox import task_enqueue_on_commit
from apps.core.sql import array_literal, insert_sql, insert_values, mark_saved
from apps.customers.models import ConsentRecord, Customer
from apps.lenders.models import Lender, LoanProduct
from apps.lenders.selectors import (
    lender_day_start,
    lender_local_date,
    restriction_policy_version_in_force,
)

ZERO = Decimal(0)
PAYABLE = frozenset({Loan.Status.ACTIVE, Loan.Status.WRITTEN_OFF, Loan.Status.PAID_OFF})


# --- quotes and signing ------------------------------------------------------------


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


def _require_minor_units(money: Money) -> None:
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
        _require_minor_units(money)
    if not product.is_active:
        raise ProductNotAvailable(product_id=product.pk)
    if device_price.amount <= 0:
        raise DevicePriceInvalid()
    if down_payment.amount < 0:
        raise DownPaymentTooSmall()
    minimum = quantize(device_price.amount * product.min_down_payment_percent / 100, currency)
    if down_payment.amount < minimum:
        raise DownPaymentTooSmall(minimum=str(minimum), currency=currency)
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
) -> Loan:
    """Create an active loan and its installments in one transaction.

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
        installments_count=product.installments,
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


def _loan_transition(*, loan: Loan, to: str, actor: Actor, reason: str = "") -> AuditEntry:
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


# --- payments ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    payment: Payment
    created: bool


def _validate_amount(*, loan: Loan, amount: Money) -> None:
    if amount.currency != loan.currency:
        raise CurrencyMismatch(expected=loan.currency, got=amount.currency)
    _require_minor_units(amount)
    if amount.amount <= 0:
        raise AmountNotInMinorUnits("The amount must be above zero.")


# Idempotency without a read first: the unique constraint answers "already
# there?" in the same statement that stores the payment. Under the loan lock a
# conflict can only come from a payment that has committed (or from another
# loan's transaction, which we then wait for), so the follow-up read sees it.
_PAYMENT_INSERT_SQL = insert_sql(Payment, conflict=("lender_id", "provider", "provider_ref"))


def _payment_existing(*, loan: Loan, provider: str, provider_ref: str) -> Payment | None:
    return Payment.objects.filter(
        lender_id=loan.lender_id, provider=provider, provider_ref=provider_ref
    ).first()


def _same_payment_or_conflict(
    existing: Payment, *, loan: Loan, amount: Money, provider_ref: str
) -> PaymentOutcome:
    if (existing.loan_id, existing.amount, existing.currency) != (
        loan.pk,
        amount.amount,
        amount.currency,
    ):
        raise IdempotencyConflict(provider_ref=provider_ref)
    return PaymentOutcome(payment=existing, created=False)


@transaction.atomic
def payment_record(
    *,
    loan_id: int,
    amount: Money,
    channel: str,
    provider: str,
    provider_ref: str,
    received_at: datetime,
    actor: Actor,
    lender_id: int | None = None,
    reason: str = "",
    receipt_ref: str = "",
) -> PaymentOutcome:
    """Record money received for a loan and re-allocate the loan's payments.

    Locks the loan, then its installments, then the loan's phones when the
    stage may come down or the loan is paid off, and the audit chain's head
    last (the global order). Idempotent on (lender, provider, provider_ref):
    the same reference with the same loan and amount returns the first
    payment; with anything else it raises IdempotencyConflict. A payment on a
    paid-off loan is kept as a credit: the money arrived. Emits
    ``collections.payment.received`` and, through the re-allocation,
    ``collections.payment.allocated`` and ``collections.loan.paid_off``. The
    loan's restriction stage drops in the same transaction if the payment
    earns it (``loan_stage_settle``), and a payoff releases the phone: the
    new desired state is pushed after commit.
    """
    return _payment_record_locked(
        loan=loan_lock(loan_id=loan_id, lender_id=lender_id),
        amount=amount,
        channel=channel,
        provider=provider,
        provider_ref=provider_ref,
        received_at=received_at,
        actor=actor,
        reason=reason,
        receipt_ref=receipt_ref,
    )


def _payment_record_locked(
    *,
    loan: Loan,
    amount: Money,
    channel: str,
    provider: str,
    provider_ref: str,
    received_at: datetime,
    actor: Actor,
    reason: str = "",
    receipt_ref: str = "",
) -> PaymentOutcome:
    """``payment_record`` once the caller holds ``loan``'s row lock, inside its transaction.

    Same contract and checks. A reference already stored is answered first,
    whatever else is wrong with the call, as when the read came first: a
    refusal (amount, status, a reversal naming another loan) is raised only
    when no payment has the reference. The payment is stored with
    ``INSERT ... ON CONFLICT DO NOTHING``, so the unique constraint, not a
    read beforehand, says whether the reference is taken; a conflict with a
    concurrent insert on another loan waits for it and then reads it
    (IdempotencyConflict, as before). tests/collections/test_webhook.py.
    """
    installments = installment_lock_list_for_loan(loan=loan)
    payment = Payment(
        lender_id=loan.lender_id,
        loan=loan,
        amount=amount.amount,
        currency=amount.currency,
        channel=channel,
        provider=provider,
        provider_ref=provider_ref,
        received_at=received_at,
        reason=reason,
        receipt_ref=receipt_ref,
    )
    try:
        _validate_amount(loan=loan, amount=amount)
        if loan.status not in PAYABLE:
            raise LoanNotPayable(loan_id=loan.pk, status=loan.status)
        payment.full_clean(
            exclude=["lender", "loan"], validate_unique=False, validate_constraints=False
        )
        misfiled, comes_last = _payment_position(loan=loan, payment=payment)
        if misfiled:  # a reversal that came first named another loan: settle it first
            raise IdempotencyConflict(
                "A reversal of this payment names another loan.", provider_ref=provider_ref
            )
    except (DomainError, ValidationError):
        existing = _payment_existing(loan=loan, provider=provider, provider_ref=provider_ref)
        if existing is not None:
            return _same_payment_or_conflict(
                existing, loan=loan, amount=amount, provider_ref=provider_ref
            )
        raise
    with connection.cursor() as cursor:
        cursor.execute(_PAYMENT_INSERT_SQL, insert_values(payment))
        row = cursor.fetchone()
    if row is None:  # the reference is taken, by a committed payment
        existing = _payment_existing(loan=loan, provider=provider, provider_ref=provider_ref)
        if existing is None:  # its transaction rolled back after all; as a race on another loan
            raise IdempotencyConflict(provider_ref=provider_ref)
        return _same_payment_or_conflict(
            existing, loan=loan, amount=amount, provider_ref=provider_ref
        )
    mark_saved(payment, row[0])
    if _fees_reach(loan=loan, installments=installments, until=received_at):
        comes_last = False  # installments late by the time it was received: the replay decides
    received = AuditEntry(
        actor=actor,
        action=CollectionsAction.PAYMENT_RECEIVED,
        target=loan,
        reason=reason,
        data={
            "payment_id": payment.pk,
            "amount": amount.amount,
            "currency": amount.currency,
            "channel": channel,
            "provider": provider,
            "provider_ref": provider_ref,
            "received_at": received_at,
            "receipt_ref": receipt_ref,
        },
    )
    allocated = _reallocate(
        loan=loan,
        installments=installments,
        actor=actor,
        new_payment=payment if comes_last else None,
    )
    if loan.stage != Stage.NONE or loan.status == Loan.Status.PAID_OFF:
        loan_phones_lock(loan=loan)  # the stage comes down, or the phone is released, below
    audit_events_record(lender_id=loan.lender_id, entries=[received, *allocated])
    loan_stage_settle(loan=loan, actor=actor, cause=LoanStageChange.Cause.PAYMENT)
    task_enqueue_on_commit("notifications.payment_receipt_queue", payment_id=payment.pk)
    return PaymentOutcome(payment=payment, created=True)


@dataclass(frozen=True, slots=True)
class ReversalOutcome:
    reversal: PaymentReversal
    created: bool


@transaction.atomic
def payment_reverse(
    *,
    loan_id: int,
    kind: str,
    amount: Money,
    provider: str,
    provider_ref: str,
    payment_provider_ref: str,
    received_at: datetime,
    actor: Actor,
    lender_id: int | None = None,
    reason: str = "",
) -> ReversalOutcome:
    """Record a chargeback or refund and re-allocate the loan's payments deterministically.

    The reversal may arrive before the payment it refers to; it then waits,
    matched by the payment's provider reference, and takes effect when the
    payment arrives. Locks like ``payment_record``. Idempotent on
    (lender, provider, provider_ref). Emits ``collections.payment.reversed``.
    """
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    installments = list(installment_lock_for_loan(loan=loan))
    existing = PaymentReversal.objects.filter(
        lender_id=loan.lender_id, provider=provider, provider_ref=provider_ref
    ).first()
    if existing is not None:
        same = (existing.loan_id, existing.amount, existing.payment_provider_ref) == (
            loan.pk,
            amount.amount,
            payment_provider_ref,
        )
        if not same:
            raise IdempotencyConflict(provider_ref=provider_ref)
        return ReversalOutcome(reversal=existing, created=False)
    _validate_amount(loan=loan, amount=amount)
    original = Payment.objects.filter(
        lender_id=loan.lender_id, provider=provider, provider_ref=payment_provider_ref
    ).first()
    if original is not None:
        if original.loan_id != loan.pk:
            raise ReversalExceedsPayment("The payment belongs to another loan.")
        already = (
            PaymentReversal.objects.filter(
                lender_id=loan.lender_id,
                provider=provider,
                payment_provider_ref=payment_provider_ref,
            ).aggregate(total=Sum("amount"))["total"]
            or ZERO
        )
        if already + amount.amount > original.amount:
            raise ReversalExceedsPayment(payment_ref=payment_provider_ref)
    reversal = PaymentReversal(
        lender_id=loan.lender_id,
        loan=loan,
        kind=kind,
        amount=amount.amount,
        currency=amount.currency,
        provider=provider,
        provider_ref=provider_ref,
        payment_provider_ref=payment_provider_ref,
        received_at=received_at,
        reason=reason,
    )
    reversal.full_clean(
        exclude=["lender", "loan"], validate_unique=False, validate_constraints=False
    )
    reversal.save(force_insert=True)
    reversed_entry = AuditEntry(
        actor=actor,
        action=CollectionsAction.PAYMENT_REVERSED,
        target=loan,
        reason=reason,
        data={
            "reversal_id": reversal.pk,
            "kind": kind,
            "amount": amount.amount,
            "payment_provider_ref": payment_provider_ref,
            "payment_known": original is not None,
        },
    )
    entries = [reversed_entry, *_reallocate(loan=loan, installments=installments, actor=actor)]
    if loan.stage != Stage.NONE or loan.status == Loan.Status.PAID_OFF:
        loan_phones_lock(loan=loan)  # the replay may lower the stage or pay the loan off
    audit_events_record(lender_id=loan.lender_id, entries=entries)
    loan_stage_settle(loan=loan, actor=actor, cause=LoanStageChange.Cause.PAYMENT)
    return ReversalOutcome(reversal=reversal, created=True)


def _payment_in(payment: Payment, reversed_amount: Decimal) -> PaymentIn:
    return PaymentIn(
        id=payment.pk,
        received_at=payment.received_at,
        provider=payment.provider,
        provider_ref=payment.provider_ref,
        amount=max(ZERO, payment.amount - reversed_amount),
    )


def _payments_in(*, loan: Loan) -> list[PaymentIn]:
    """Every payment of ``loan``, each less what reverses it (whenever that arrived)."""
    reversed_by_ref: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for row in (
        PaymentReversal.objects.filter(loan=loan)
        .values("provider", "payment_provider_ref")
        .annotate(total=Sum("amount"))
    ):
        reversed_by_ref[(row["provider"], row["payment_provider_ref"])] = row["total"]
    return [
        _payment_in(p, reversed_by_ref[(p.provider, p.provider_ref)])
        for p in Payment.objects.filter(loan=loan)
    ]


def _ledger_net(*, loan: Loan) -> dict[tuple[int, int, str], Decimal]:
    net: dict[tuple[int, int, str], Decimal] = defaultdict(lambda: ZERO)
    for row in (
        Allocation.objects.filter(loan=loan)
        .values("payment_id", "installment_id", "component", "direction")
        .annotate(total=Sum("amount"))
    ):
        sign = 1 if row["direction"] == Allocation.Direction.CREDIT else -1
        net[(row["payment_id"], row["installment_id"], row["component"])] += sign * row["total"]
    return net


# Both questions a new payment asks before it is stored, in one round trip of
# SQL written once (it runs on every payment). Payments sort by (received_at,
# provider, provider_ref), the order allocate() replays them in; a strict ">"
# on that key cannot match the new payment itself (the reference is unique).
_PAYMENT_POSITION_SQL = """
SELECT
    EXISTS (
        SELECT 1 FROM collections_paymentreversal
        WHERE lender_id = %(lender)s AND provider = %(p)s AND payment_provider_ref = %(r)s
          AND loan_id <> %(loan)s
    ),
    NOT EXISTS (
        SELECT 1 FROM collections_payment
        WHERE loan_id = %(loan)s AND (received_at, provider, provider_ref) > (%(t)s, %(p)s, %(r)s)
    ) AND NOT EXISTS (
        SELECT 1 FROM collections_paymentreversal
        WHERE loan_id = %(loan)s AND provider = %(p)s AND payment_provider_ref = %(r)s
    ) AND NOT EXISTS (
        SELECT 1 FROM collections_installment
        WHERE loan_id = %(loan)s AND late_fee_charged > 0 AND late_from > %(t)s
    )
"""


def _fees_reach(*, loan: Loan, installments: list[Installment], until: datetime) -> bool:
    """Reach ``loan``'s installments late by ``until`` that the fee run has not reached yet
    (their fee if late recorded; the caller holds their locks). Whether any was."""
    due = [i for i in installments if i.late_fee_charged is None and i.late_from <= until]
    if loan.late_fee_type == LoanProduct.LateFeeType.NONE or not due:
        return False  # nothing to reach: no query (the webhook's hot path)
    with connection.cursor() as cursor:
        cursor.execute(
            _FEE_REACH_FOR_PAYMENT,
            {"loan": loan.pk, "until": until, "places": minor_units(loan.currency)},
        )
        charged = dict(cursor.fetchall())
    for inst in installments:
        if inst.pk in charged:
            inst.late_fee_charged = charged[inst.pk]
    return bool(charged)


def _payment_position(*, loan: Loan, payment: Payment) -> tuple[bool, bool]:
    """(misfiled, comes_last) for ``payment``, not yet stored, under ``loan``'s lock.

    misfiled: a reversal of its reference, arrived first, names another loan.
    comes_last: no payment of the loan sorts after it, nothing reverses it, and
    it was received once every installment the fee run reached was late (so it
    decides no late fee), so allocating it on top of the books equals a full
    replay.
    """
    params = {
        "lender": loan.lender_id,
        "loan": loan.pk,
        "t": payment.received_at,
        "p": payment.provider,
        "r": payment.provider_ref,
    }
    with connection.cursor() as cursor:
        cursor.execute(_PAYMENT_POSITION_SQL, params)
        misfiled, comes_last = cursor.fetchone()
    return bool(misfiled), bool(comes_last)


_PAID_UPDATE_SQL = """
UPDATE collections_installment AS i
SET late_fee_paid = v.late_fee_paid, fee_paid = v.fee_paid, interest_paid = v.interest_paid,
    principal_paid = v.principal_paid, paid_at = v.paid_at, late_fee_amount = v.late_fee,
    late_fee_assessed_at = v.assessed_at, updated_at = %s
FROM (VALUES {rows}) AS v(id, late_fee_paid, fee_paid, interest_paid, principal_paid, paid_at,
                          late_fee, assessed_at)
WHERE i.id = v.id
"""


def _installments_paid_update(*, installments: list[Installment], result: Allocated) -> None:
    """Write the paid columns, the paid time and the late fee of the installments that
    changed, in one statement (so the checks see each row whole)."""
    rows, params = [], []
    for inst in installments:
        values = [result.paid[inst.pk][c] for c in COMPONENTS]
        fee = (result.late_fee[inst.pk], result.late_fee_assessed_at[inst.pk])
        if (
            values == [getattr(inst, f"{c}_paid") for c in COMPONENTS]
            and result.paid_at[inst.pk] == inst.paid_at
            and fee == (inst.late_fee_amount, inst.late_fee_assessed_at)
        ):
            continue
        rows.append(
            "(%s::bigint, %s::numeric, %s::numeric, %s::numeric, %s::numeric, %s::timestamptz,"
            " %s::numeric, %s::timestamptz)"
        )
        params.extend([inst.pk, *values, result.paid_at[inst.pk], *fee])
        for component, value in zip(COMPONENTS, values, strict=True):
            setattr(inst, f"{component}_paid", value)
        inst.paid_at = result.paid_at[inst.pk]
        inst.late_fee_amount, inst.late_fee_assessed_at = fee
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(_PAID_UPDATE_SQL.format(rows=", ".join(rows)), [timezone.now(), *params])


def _allocations_insert(allocations: list[Allocation]) -> None:
    """``bulk_create`` of ledger lines in one statement, without compiling a queryset."""
    if allocations:
        params = [value for allocation in allocations for value in insert_values(allocation)]
        with connection.cursor() as cursor:
            cursor.execute(insert_sql(Allocation, rows=len(allocations), returning=False), params)


def _reallocate(
    *,
    loan: Loan,
    installments: list[Installment],
    actor: Actor,
    new_payment: Payment | None = None,
) -> list[AuditEntry]:
    """Bring the allocation of ``loan``'s payments up to date and append the ledger lines.

    The books always equal a replay of every payment in canonical order. When
    the only change is ``new_payment`` and it comes last in that order with
    nothing reversing it (the usual case; the caller passes it only then, see
    ``_payment_position``), allocating just that payment on top of the books
    gives the same result (``allocate_next``) without reading the loan's whole
    history; anything else (a reversal, a backdated payment) replays everything. Caller holds the loan and installment locks and
    records the returned audit entries (allocation, payoff or reopening) with
    its own, so the chain head is locked only at the very end. Writes only
    differences, so a replay that changes nothing writes nothing.
    """
    entries: list[AuditEntry] = []
    dues = [
        InstallmentDue(
            id=i.pk,
            sequence=i.sequence,
            late_fee_assessed_at=i.late_fee_assessed_at,
            due={c: getattr(i, f"{c}_amount") for c in COMPONENTS},
            settled_at=i.paid_at,
            late_fee_charged=i.late_fee_charged,
            late_from=i.late_from,
        )
        for i in installments
    ]
    fees_before = {i.pk: i.late_fee_amount for i in installments}
    if new_payment is not None:
        paid = {i.pk: {c: getattr(i, f"{c}_paid") for c in COMPONENTS} for i in installments}
        result = allocate_next(
            dues, paid, {i.pk: i.paid_at for i in installments}, _payment_in(new_payment, ZERO)
        )
        delta = dict(result.lines)
    else:
        result = allocate(dues, _payments_in(loan=loan))
        delta = ledger_delta(result.lines, _ledger_net(loan=loan))
    entries.extend(
        _late_fee_entries(
            loan=loan, installments=installments, before=fees_before, result=result, actor=actor
        )
    )
    _installments_paid_update(installments=installments, result=result)  # changed rows only
    if delta:
        _allocations_insert(
            [
                Allocation(
                    lender_id=loan.lender_id,
                    loan=loan,
                    payment_id=payment_id,
                    installment_id=installment_id,
                    component=component,
                    amount=abs(amount),
                    direction=Allocation.Direction.CREDIT
                    if amount > 0
                    else Allocation.Direction.DEBIT,
                )
                for (payment_id, installment_id, component), amount in sorted(delta.items())
            ]
        )
        allocated = AuditEntry(
            actor=actor,
            action=CollectionsAction.PAYMENT_ALLOCATED,
            target=loan,
            data={
                "lines": [
                    {"payment_id": p, "installment_id": i, "component": c, "amount": a}
                    for (p, i, c), a in sorted(delta.items())
                ],
                "unapplied": {str(k): v for k, v in result.unapplied.items() if v},
            },
        )
        entries.append(allocated)

    outstanding = result.outstanding(dues)
    if outstanding == 0 and loan.status in (Loan.Status.ACTIVE, Loan.Status.WRITTEN_OFF):
        entries.append(_loan_transition(loan=loan, to=Loan.Status.PAID_OFF, actor=actor))
    elif outstanding > 0 and loan.status == Loan.Status.PAID_OFF:
        reopened = _loan_transition(
            loan=loan,
            to=Loan.Status.ACTIVE,
            actor=actor,
            reason="The balance was reopened: a payment was reversed, or a late fee came due.",
        )
        entries.append(reopened)
        if loan.collateral_released_at is not None:  # the phone is free: off the ladder for good
            entries.append(
                AuditEntry(
                    actor=actor,
                    action=CollectionsAction.LOAN_RELEASED_WITH_ARREARS,
                    target=loan,
                    data={
                        "outstanding": outstanding,
                        "currency": loan.currency,
                        "released_at": loan.collateral_released_at,
                    },
                    reason="Reopened after its phone was released: it can no longer be restricted.",
                )
            )
    return entries


def _late_fee_entries(
    *,
    loan: Loan,
    installments: list[Installment],
    before: dict[int, Decimal],
    result: Allocated,
    actor: Actor,
) -> list[AuditEntry]:
    """The audit events of the late fees the replay changed: one assessed (money received
    before the installment became late was taken back, or the fee run reached an
    installment paid after it did) or reversed (money received in time was posted after the
    fee run)."""
    entries = []
    for inst in installments:
        old, new = before[inst.pk], result.late_fee[inst.pk]
        if old == new:
            continue
        action = (
            CollectionsAction.LATE_FEE_ASSESSED
            if new > old
            else CollectionsAction.LATE_FEE_REVERSED
        )
        entries.append(
            AuditEntry(
                actor=actor,
                action=action,
                target=Installment(pk=inst.pk, lender_id=loan.lender_id),
                data={
                    "loan_id": loan.pk,
                    "sequence": inst.sequence,
                    "old": old,
                    "new": new,
                    "late_from": inst.late_from,
                },
                reason="The installment was paid before it became late."
                if new < old
                else "The installment was not paid before it became late.",
            )
        )
    return entries


# --- late fees ---------------------------------------------------------------------

# The late fee an installment ``i`` of loan ``l`` owes if it is late: fixed, or a percent of the
# installment rounded half up to the currency's minor unit (%(places)s) and capped.
_FEE_IF_LATE = """CASE l.late_fee_type
            WHEN 'fixed' THEN l.late_fee_value
            WHEN 'percent' THEN LEAST(l.late_fee_cap, ROUND(
                (i.principal_amount + i.interest_amount + i.fee_amount) * l.late_fee_value / 100,
                %(places)s))
            ELSE 0 END"""

# Reach the installments of one loan late by the time money was received (``%(until)s``),
# before that money is allocated: the replay then decides their fees as the fee run would
# have, and a payoff received after an installment became late pays its fee first.
_FEE_REACH_FOR_PAYMENT = f"""
UPDATE {Installment._meta.db_table} AS i SET late_fee_charged = {_FEE_IF_LATE}
FROM {Loan._meta.db_table} AS l
WHERE l.id = %(loan)s AND i.loan_id = l.id AND i.late_fee_charged IS NULL
  AND i.late_from <= %(until)s
RETURNING i.id, i.late_fee_charged
"""  # noqa: S608  (table names from model metadata; values are parameters)

# Lock, in id order, the active loans with installments the fee run reaches now (the loan
# before its installments: the global order). Money received after an installment became late
# reached it when it was posted (``_FEE_REACH_FOR_PAYMENT``), so a loan paid off since owes
# nothing more here; a written-off loan accrues no fee.
_FEE_LOANS_LOCK = f"""
SELECT id FROM {Loan._meta.db_table} WHERE id IN (
    SELECT i.loan_id FROM {Installment._meta.db_table} AS i
    WHERE i.lender_id = %(lender)s AND i.late_fee_charged IS NULL AND i.late_from <= %(now)s)
  AND status = 'active'
ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608  (table names from model metadata; values are parameters)

# Reach them: record the fee each one's terms charge if late (fixed, or a percent of the
# installment rounded half up to the currency's minor unit and capped). Where no money was
# received since the installment became late (nearly always), what the rows show is what was
# paid before then, so the fee stands exactly when the installment is unpaid, and no payment's
# allocation moves: decided here, set-based. Otherwise (``replay``) the loan's payments are
# replayed (``_reallocate``), which decides it.
_FEE_REACH = f"""
WITH reached AS (
    SELECT i.id, {_FEE_IF_LATE} AS fee,
        EXISTS (SELECT 1 FROM {Payment._meta.db_table} AS p
                WHERE p.loan_id = i.loan_id AND p.received_at >= i.late_from) AS replay,
        {UNPAID_SQL.format(t="i")} AS unpaid
    FROM {Installment._meta.db_table} AS i JOIN {Loan._meta.db_table} AS l ON l.id = i.loan_id
    WHERE i.loan_id = ANY(%(loans)s::bigint[]) AND i.late_fee_charged IS NULL
      AND i.late_from <= %(now)s
),
decided AS (SELECT id, fee, replay, NOT replay AND unpaid AND fee > 0 AS stands FROM reached)
UPDATE {Installment._meta.db_table} AS i
SET late_fee_charged = r.fee,
    late_fee_amount = CASE WHEN r.stands THEN r.fee ELSE i.late_fee_amount END,
    late_fee_assessed_at = CASE WHEN r.stands THEN i.late_from ELSE i.late_fee_assessed_at END,
    updated_at = %(now)s
FROM decided AS r
WHERE i.id = r.id
RETURNING i.id, i.loan_id, i.sequence, i.late_from, r.stands, r.fee, r.replay
"""  # noqa: S608  (as above)


@transaction.atomic
def installment_late_fees_assess(
    *, lender_id: int, actor: Actor, as_of: datetime | None = None
) -> int:
    """Reach every installment of ``lender_id`` that has become late by ``as_of`` (now), and
    charge its late fee where it stands. Returns how many fees were charged.

    Beat runs it for each lender just after its business day ends
    (``LATE_FEE_LOCAL_TIME``). An installment is late from ``late_from``: the
    start of the lender's local day after its due date and grace days. The fee
    stands if the money received before then did not pay the installment,
    whenever that money is posted (a later payment received in time takes it
    back: ``_reallocate``). Each installment is reached once
    (``late_fee_charged``), so running twice, or twice at once, changes
    nothing. Locks the loans in id order, then their installments. Emits
    ``collections.late_fee.assessed`` per fee charged (and, through a replay,
    ``.reversed`` and ``collections.payment.allocated``), appended as one batch.
    """
    lender = Lender.objects.get(pk=lender_id)
    now = as_of or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_FEE_LOANS_LOCK, {"lender": lender_id, "now": now})
        loan_ids = [row[0] for row in cursor.fetchall()]
        if not loan_ids:
            return 0
        cursor.execute(
            _FEE_REACH,
            {"loans": array_literal(loan_ids), "now": now, "places": minor_units(lender.currency)},
        )
        reached = cursor.fetchall()
    entries = [
        AuditEntry(
            actor=actor,
            action=CollectionsAction.LATE_FEE_ASSESSED,
            target=Installment(pk=installment_id, lender_id=lender_id),
            data={
                "loan_id": loan_id,
                "sequence": sequence,
                "old": ZERO,
                "new": fee,
                "late_from": late_from,
            },
            reason="The installment was not paid before it became late.",
        )
        for installment_id, loan_id, sequence, late_from, stands, fee, _ in reached
        if stands
    ]
    for loan_id in sorted({row[1] for row in reached if row[6]}):
        loan = Loan.objects.get(pk=loan_id)  # locked above
        entries.extend(
            _reallocate(
                loan=loan, installments=installment_lock_list_for_loan(loan=loan), actor=actor
            )
        )
    audit_events_record(lender_id=lender_id, entries=entries)
    return sum(1 for e in entries if e.action == CollectionsAction.LATE_FEE_ASSESSED)


@transaction.atomic
def loan_books_replay(*, loan_id: int, actor: Actor) -> bool:
    """Replay all of ``loan_id``'s payments and reversals (the full replay: late fees decided by
    when money was received), append what differs, and settle its stage. Whether anything
    changed.

    For books written before late fees followed received time (``manage.py
    late_fees_replay``): a fee the old run stamped on an installment paid in
    time is taken back, the stage lowered if that makes the loan less late,
    the phone released if it pays the loan off. Locks the loan, its
    installments, its phones, then the chain. Safe to run again: a second run
    changes nothing.
    """
    loan = loan_lock(loan_id=loan_id)
    installments = installment_lock_list_for_loan(loan=loan)
    entries = _reallocate(loan=loan, installments=installments, actor=actor)
    if not entries:
        return False
    if loan.stage != Stage.NONE or loan.status == Loan.Status.PAID_OFF:
        loan_phones_lock(loan=loan)
    audit_events_record(lender_id=loan.lender_id, entries=entries)
    loan_stage_settle(
        loan=loan,
        actor=actor,
        cause=LoanStageChange.Cause.PAYMENT,
        reason="The books were replayed by received time.",
    )
    return True


# --- provider webhooks -------------------------------------------------------------


def _body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def webhook_rejection_record(
    *, lender_id: int | None, provider: str, problem: str, actor: Actor, extra: dict[str, Any]
) -> None:
    """Record a refused provider callback (bad signature, stale, unknown loan...)."""
    with transaction.atomic():
        audit_event_record(
            actor=actor,
            action=CollectionsAction.WEBHOOK_REJECTED,
            lender_id=lender_id,
            data={"provider": provider, "problem": problem, **extra},
        )


@dataclass(frozen=True, slots=True)
class WebhookPayload:
    """The provider event's fields, checked for shape by the API layer."""

    event_id: str
    event_type: str  # payment.succeeded or payment.reversed
    loan_reference: str
    amount: Money
    reference: str
    received_at: datetime
    reverses: str = ""
    kind: str = PaymentReversal.Kind.CHARGEBACK


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: str  # applied or duplicate
    payment_id: int | None
    reversal_id: int | None


# The event's two statements as SQL written once: they run on every delivery.
_WEBHOOK_EVENT_GET_SQL = (
    "SELECT * FROM collections_webhookevent"
    " WHERE lender_id = %s AND provider = %s AND event_id = %s"
)
_WEBHOOK_EVENT_INSERT_SQL = insert_sql(WebhookEvent)


def _webhook_event_get(*, lender_id: int, provider: str, event_id: str) -> WebhookEvent | None:
    found = list(WebhookEvent.objects.raw(_WEBHOOK_EVENT_GET_SQL, [lender_id, provider, event_id]))
    return found[0] if found else None


def _webhook_event_insert(event: WebhookEvent) -> None:
    """``save(force_insert=True)``; a second copy of the event raises IntegrityError."""
    with connection.cursor() as cursor:
        cursor.execute(_WEBHOOK_EVENT_INSERT_SQL, insert_values(event))
        mark_saved(event, cursor.fetchone()[0])


def _received_after_signing(*, loan: Loan, received_at: datetime) -> None:
    """Refuse a provider's money dated before ``loan`` was signed: it names the wrong loan
    or the wrong date, and replayed in ``received_at`` order it would pay installments
    before they existed. tests/collections/test_webhook.py."""
    if loan.signed_at is None or received_at >= loan.signed_at:
        return
    dates = {"received_at": received_at.isoformat(), "signed_at": loan.signed_at.isoformat()}
    message = _(
        "The money is dated %(received_at)s, before loan %(loan)s was signed (%(signed_at)s)."
    )
    raise ReceivedBeforeSigning(message % {**dates, "loan": loan.reference}, **dates)


def payment_webhook_apply(
    *, lender_id: int, provider: str, payload: WebhookPayload, body: bytes, actor: Actor
) -> WebhookOutcome:
    """Apply a verified provider event exactly once and store its raw body.

    The outermost transaction (durable): the payment or reversal, its
    allocation and the stored event commit together. Five deliveries of one
    event at the same moment queue on the loan's row lock; the first applies
    it, the others find the payment by its reference and then lose the race for
    the event's unique slot, and answer "duplicate". The same event id with a
    different body raises IdempotencyConflict. An unknown loan raises
    LoanNotFound, and money dated before the loan was signed
    ReceivedBeforeSigning; either stores nothing.
    """
    digest = _body_sha256(body)
    existing = _webhook_event_get(lender_id=lender_id, provider=provider, event_id=payload.event_id)
    if existing is not None:
        return _duplicate_or_conflict(existing, digest)
    try:
        with transaction.atomic(durable=True):
            payment, reversal = None, None
            # the loan found and locked in one query (payment_reverse's own lock then
            # finds it held): the first lock either path takes
            loan = loan_lock_by_reference(lender_id=lender_id, reference=payload.loan_reference)
            _received_after_signing(loan=loan, received_at=payload.received_at)
            if payload.event_type == "payment.reversed":
                reversal = payment_reverse(
                    loan_id=loan.pk,
                    lender_id=lender_id,
                    kind=payload.kind,
                    amount=payload.amount,
                    provider=provider,
                    provider_ref=payload.reference,
                    payment_provider_ref=payload.reverses,
                    received_at=payload.received_at,
                    actor=actor,
                ).reversal
            else:
                # payment_record's contract, with no savepoint: this transaction is the
                # whole unit.
                payment = _payment_record_locked(
                    loan=loan,
                    amount=payload.amount,
                    channel=Payment.Channel.PROVIDER,
                    provider=provider,
                    provider_ref=payload.reference,
                    received_at=payload.received_at,
                    actor=actor,
                ).payment
            _webhook_event_insert(
                WebhookEvent(
                    lender_id=lender_id,
                    provider=provider,
                    event_id=payload.event_id,
                    event_type=payload.event_type,
                    body=body.decode("utf-8"),
                    body_sha256=digest,
                    payment=payment,
                    reversal=reversal,
                )
            )
    except IntegrityError:
        existing = _webhook_event_get(
            lender_id=lender_id, provider=provider, event_id=payload.event_id
        )
        if existing is None:
            raise
        return _duplicate_or_conflict(existing, digest)
    return WebhookOutcome(
        status="applied",
        payment_id=payment.pk if payment else None,
        reversal_id=reversal.pk if reversal else None,
    )


def _duplicate_or_conflict(event: WebhookEvent, digest: str) -> WebhookOutcome:
    if event.body_sha256 != digest:
        raise IdempotencyConflict(event_id=event.event_id)
    return WebhookOutcome(
        status="duplicate", payment_id=event.payment_id, reversal_id=event.reversal_id
    )
