"""The daily reconciliation report: the payments a provider settled for a lender on one
business day, set beside the payments we applied through it, and what differs.

The provider's reference is the key on both sides (``Payment`` is unique per lender,
provider and reference), so the two lists are compared by reference:

* ``missing_here``: the provider settled it, and we have no payment with its reference;
* ``missing_at_provider``: we applied a payment of the provider's that it does not list;
* ``amount_differs``: both have it, for different amounts (or currencies);
* ``unmatched``: money paid to the lender's M-Pesa paybill under an account number naming
  no loan, kept unapplied (its confirmation stored with no payment and no reversal).

Our side is read in SQL (the day's count and total) and streamed by reference, a chunk at a
time; the provider's is the list its adapter returns. A provider that lists nothing (M-Pesa:
``settled`` answers None) gets our side and the unmatched payments only; one that fails
leaves the report marked failed with its code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from apps.audit.services import audit_event_record
from apps.collections.events import CollectionsAction
from apps.collections.models import Loan, Payment, ReconciliationReport, WebhookEvent
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.core.money import Money, quantize
from apps.integrations.payments.base import ProviderError, SettledPayment
from apps.integrations.payments.mpesa import CallbackMalformed, c2b_parse, stk_callback_parse
from apps.integrations.payments.registry import adapter_for, providers_enabled
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_day_start, lender_local_date

logger = logging.getLogger(__name__)

Kind = ReconciliationReport.Kind

# The provider is asked for the payments settled from this long before the day to a little
# after it, and its day is the ones received within the day. Stripe lists PaymentIntents by
# when they were created, and an OXXO voucher is paid up to three days after (the store's
# money arrives a business day later): without the week before, a voucher paid today would
# look missing at Stripe. And a payment Stripe charged at 23:59:59 reaches us by a callback
# dated a second later, on the next day: each side's neighbours keep it from showing twice.
SETTLED_LOOKBACK = timedelta(days=7)
SETTLED_LOOKAHEAD = timedelta(hours=1)
CHUNK = 2000  # references read or looked up per query
# a paybill confirmation's event id (apps.integrations.payments.mpesa); M-Pesa pays shillings
PAYBILL_EVENT_PREFIX = "c2b:"
PAYBILL_CURRENCY = "KES"


@dataclass(frozen=True, slots=True)
class _Ours:
    reference: str
    amount: Money
    received_at: datetime
    loan_id: int
    loan_reference: str


def reconciliation_report_build(
    *, lender_id: int, provider: str, day: date, actor: Actor
) -> ReconciliationReport:
    """Compare what ``provider`` settled for the lender on ``day`` (the lender's local
    date) with the payments we applied through it, and store the report: one per lender,
    provider and day, replaced when the same day is built again.

    The provider is asked with no transaction open. Its failure (``ProviderError``, or an
    account that is not in use or whose secrets no key opens) marks the report failed with
    the code, with our side and the unmatched payments still in it. Takes the report's row
    lock. Emits ``collections.reconciliation.reported`` with the counts (no reference, no
    amount: nothing about a customer)."""
    lender = Lender.objects.get(pk=lender_id)
    start = lender_day_start(lender=lender, day=day)
    end = lender_day_start(lender=lender, day=day + timedelta(days=1))
    failure = ""
    listed: list[SettledPayment] | None
    try:
        adapter = adapter_for(lender_id=lender_id, lender_slug=lender.slug, provider=provider)
        listed = adapter.settled(start=start - SETTLED_LOOKBACK, end=end + SETTLED_LOOKAHEAD)
    except ProviderError as exc:
        logger.warning("settled payments not listed: %s %s", provider, exc.code)
        failure, listed = exc.code, None
    except DomainError as exc:  # no account in use, or its secrets unreadable
        failure, listed = exc.code, None
    ours = Payment.objects.filter(
        lender_id=lender_id, provider=provider, received_at__gte=start, received_at__lt=end
    )
    totals = ours.aggregate(count=Count("pk"), total=Sum("amount"))
    differences = _unmatched(lender_id=lender_id, provider=provider, start=start, end=end)
    provider_count: int | None = None
    provider_total: Decimal | None = None
    if listed is not None:
        in_day = [item for item in listed if start <= item.received_at < end]
        provider_count = len(in_day)
        provider_total = sum(
            (i.amount.amount for i in in_day if i.amount.currency == lender.currency), Decimal(0)
        )
        differences += _compared(
            lender_id=lender_id, provider=provider, ours=ours, listed=listed, in_day=in_day
        )
    differences.sort(key=lambda d: (d["received_at"], d["kind"], d["reference"]))
    values = {
        "generated_at": timezone.now(),
        "status": ReconciliationReport.Status.FAILED
        if failure
        else ReconciliationReport.Status.BUILT,
        "failure_code": failure[:60],
        "currency": lender.currency,
        "our_count": totals["count"],
        "our_total": totals["total"] or Decimal(0),
        "provider_count": provider_count,
        "provider_total": provider_total,
        "difference_count": len(differences),
        "differences": differences,
    }
    return _report_save(lender_id=lender_id, provider=provider, day=day, values=values, actor=actor)


def reconciliation_reports_build(
    *, actor: Actor, day: date | None = None, lender_id: int | None = None
) -> list[ReconciliationReport]:
    """Build the report of every lender (or of ``lender_id`` only) for each provider it has
    an account in use with, for ``day`` or else yesterday in each lender's timezone. A
    provider that fails marks its own report failed and the others go ahead; an unexpected
    error in one report is logged, the others are built, and the first such error is raised
    at the end (each report is its own transaction: the built ones stay)."""
    lenders = Lender.objects.order_by("pk")
    if lender_id is not None:
        lenders = lenders.filter(pk=lender_id)
    reports: list[ReconciliationReport] = []
    error: Exception | None = None
    for lender in lenders:
        for provider in providers_enabled(lender_id=lender.pk):
            try:
                on = day or lender_local_date(lender=lender) - timedelta(days=1)
                reports.append(
                    reconciliation_report_build(
                        lender_id=lender.pk, provider=provider, day=on, actor=actor
                    )
                )
            except Exception as exc:
                logger.exception("reconciliation report failed: lender %s %s", lender.pk, provider)
                error = error or exc
    if error is not None:
        raise error
    return reports


# --- the two sides -------------------------------------------------------------------


def _compared(
    *,
    lender_id: int,
    provider: str,
    ours: QuerySet[Payment],
    listed: list[SettledPayment],
    in_day: list[SettledPayment],
) -> list[dict[str, Any]]:
    """Our payments of the day against the provider's list (the day and its neighbours),
    then the provider's payments of the day we did not have that day, looked up by
    reference on any day."""
    theirs = {item.reference: item for item in listed}
    unseen = {item.reference for item in in_day}
    differences = []
    for payment in _stream(ours):
        unseen.discard(payment.reference)
        settled = theirs.get(payment.reference)
        if settled is None:
            differences.append(_difference(Kind.MISSING_AT_PROVIDER, payment))
        elif settled.amount != payment.amount:
            differences.append(_difference(Kind.AMOUNT_DIFFERS, payment, settled=settled))
    missing: list[SettledPayment] = []
    for chunk in _chunks(sorted(unseen)):
        found = {
            p.reference: p
            for p in _stream(
                Payment.objects.filter(
                    lender_id=lender_id, provider=provider, provider_ref__in=chunk
                )
            )
        }
        for reference in chunk:
            elsewhere = found.get(reference)  # ours, dated another day
            if elsewhere is None:
                missing.append(theirs[reference])
            elif theirs[reference].amount != elsewhere.amount:
                differences.append(
                    _difference(Kind.AMOUNT_DIFFERS, elsewhere, settled=theirs[reference])
                )
    loans = _loans_named(lender_id=lender_id, references={m.loan_reference for m in missing})
    for absent in missing:
        loan_id = loans.get(Loan.reference_as_typed(absent.loan_reference))
        differences.append(_missing_here(absent, loan_id=loan_id))
    return differences


def _stream(payments: QuerySet[Payment]) -> Iterator[_Ours]:
    rows = (
        payments.order_by()
        .values_list(
            "provider_ref", "amount", "currency", "received_at", "loan_id", "loan__reference"
        )
        .iterator(chunk_size=CHUNK)
    )
    for reference, amount, currency, received_at, loan_id, loan_reference in rows:
        yield _Ours(reference, Money(amount, currency), received_at, loan_id, loan_reference)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _loans_named(*, lender_id: int, references: Iterable[str]) -> dict[str, int]:
    typed = {Loan.reference_as_typed(r) for r in references if r}
    if not typed:
        return {}
    return dict(
        Loan.objects.filter(lender_id=lender_id, reference__in=typed).values_list("reference", "pk")
    )


def _unmatched(
    *, lender_id: int, provider: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Money paid to the paybill on the day under an account number naming no loan: its
    confirmation was kept with no payment and no reversal, and no payment has its receipt
    since (the back office placed it)."""
    events = (
        WebhookEvent.objects.filter(
            lender_id=lender_id,
            provider=provider,
            payment__isnull=True,
            reversal__isnull=True,
            created_at__gte=start,
            created_at__lt=end,
        )
        # a paybill confirmation, or a push's payment we could not place (kept)
        .filter(Q(event_id__startswith=PAYBILL_EVENT_PREFIX) | Q(event_type="stk.paid"))
        .order_by("created_at", "pk")
        .values_list("event_id", "body", "created_at")
    )
    kept = {}
    for event_id, body, created_at in events.iterator(chunk_size=CHUNK):
        reference = event_id.removeprefix(PAYBILL_EVENT_PREFIX)
        try:
            if event_id.startswith(PAYBILL_EVENT_PREFIX):
                paid = c2b_parse(json.loads(body))
                reference, amount, at, account = (
                    paid.receipt,
                    paid.amount,
                    paid.paid_at,
                    paid.account,
                )
            else:
                pushed = stk_callback_parse(json.loads(body))
                if pushed.amount is None or pushed.paid_at is None:
                    raise CallbackMalformed("a paid push has its amount and time")
                reference, amount, at, account = (
                    pushed.receipt,
                    pushed.amount,
                    pushed.paid_at,
                    "",
                )
        except (CallbackMalformed, ValueError):  # read when it came: kept, amount unknown
            kept[reference] = _entry(Kind.UNMATCHED, reference, None, "", created_at)
            continue
        entry = _entry(Kind.UNMATCHED, reference, amount, PAYBILL_CURRENCY, min(at, created_at))
        entry["account"] = account[:40]
        kept[reference] = entry
    placed: set[str] = set()
    for chunk in _chunks(sorted(kept)):
        placed.update(
            Payment.objects.filter(
                lender_id=lender_id, provider=provider, provider_ref__in=chunk
            ).values_list("provider_ref", flat=True)
        )
    return [entry for reference, entry in kept.items() if reference not in placed]


# --- one difference ----------------------------------------------------------------------


def _entry(
    kind: str,
    reference: str,
    amount: Decimal | None,
    currency: str,
    received_at: datetime,
    *,
    loan_id: int | None = None,
    loan_reference: str = "",
) -> dict[str, Any]:
    return {
        "kind": str(kind),
        "reference": reference,
        "amount": str(quantize(amount, currency)) if amount is not None else "",
        "currency": currency,
        "provider_amount": "",
        "provider_currency": "",
        "received_at": received_at.astimezone(UTC).isoformat(),
        "loan": loan_id,
        "loan_reference": loan_reference,
        "account": "",
    }


def _difference(
    kind: str, payment: _Ours, *, settled: SettledPayment | None = None
) -> dict[str, Any]:
    """A difference about one of our payments; with ``settled``, the provider's amount too."""
    entry = _entry(
        kind,
        payment.reference,
        payment.amount.amount,
        payment.amount.currency,
        payment.received_at,
        loan_id=payment.loan_id,
        loan_reference=payment.loan_reference,
    )
    if settled is not None:
        theirs = settled.amount
        entry["provider_amount"] = str(quantize(theirs.amount, theirs.currency))
        entry["provider_currency"] = theirs.currency
    return entry


def _missing_here(settled: SettledPayment, *, loan_id: int | None) -> dict[str, Any]:
    return _entry(
        Kind.MISSING_HERE,
        settled.reference,
        settled.amount.amount,
        settled.amount.currency,
        settled.received_at,
        loan_id=loan_id,
        loan_reference=settled.loan_reference[:20],
    )


# --- storing it ----------------------------------------------------------------------------


def _report_save(
    *, lender_id: int, provider: str, day: date, values: dict[str, Any], actor: Actor
) -> ReconciliationReport:
    """Replace (or create) the day's report under its row lock, and audit it. Two builds of
    the same new day racing: the loser's insert fails on the unique constraint, and it
    replaces the winner's row instead."""
    for retry in (False, True):
        try:
            with transaction.atomic():
                return _report_write(
                    lender_id=lender_id, provider=provider, day=day, values=values, actor=actor
                )
        except IntegrityError:
            if retry:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _report_write(
    *, lender_id: int, provider: str, day: date, values: dict[str, Any], actor: Actor
) -> ReconciliationReport:
    report = ReconciliationReport.objects.select_for_update().filter(
        lender_id=lender_id, provider=provider, day=day
    ).first() or ReconciliationReport(lender_id=lender_id, provider=provider, day=day)
    for name, value in values.items():
        setattr(report, name, value)
    # the unique day and the check constraints are the database's (a race, above)
    report.full_clean(exclude=["lender"], validate_unique=False, validate_constraints=False)
    report.save()
    by_kind: dict[str, int] = {}
    for difference in report.differences:
        by_kind[difference["kind"]] = by_kind.get(difference["kind"], 0) + 1
    audit_event_record(
        actor=actor,
        action=CollectionsAction.RECONCILIATION_REPORTED,
        target=report,
        lender_id=lender_id,
        data={
            "provider": provider,
            "day": day.isoformat(),
            "status": report.status,
            "failure_code": report.failure_code,
            "our_count": report.our_count,
            "provider_count": report.provider_count,
            "differences": by_kind,
        },
    )
    return report
