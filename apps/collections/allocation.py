"""Payment allocation: which part of which payment pays which component of which installment.

Pure arithmetic, no database, so it can be checked with hypothesis
(tests/collections/test_allocation.py). The result depends only on the set of
payments, reversals and the installments the late-fee run has reached, never
on the order they arrived in: payments are replayed in a canonical order,
(received_at, provider, provider_ref), and a reversal reduces its payment
whenever it came.

For each payment, oldest installment first: late fee, fee, interest, then
principal; what is left pays the following installments (an overpayment) and
what is left after the last one stays unapplied, as a credit.

Late fees are part of the replay, so they follow when money was received,
not when it was posted. An installment the fee run has reached (its
``late_fee_charged`` is set) owes that fee if it was not paid by money
received before ``late_from`` (the start of the lender's local day after its
due date and grace days); the fee is payable only by money received from
then on (or from ``late_fee_assessed_at``, if a fee assessed by the earlier
rule says later). A payment posted late but received in time therefore takes
the fee back (tests/collections/test_services_late_fees.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

COMPONENTS = ("late_fee", "fee", "interest", "principal")
ZERO = Decimal(0)

Key = tuple[int, int, str]  # (payment id, installment id, component)


@dataclass(frozen=True, slots=True)
class InstallmentDue:
    id: int
    sequence: int
    due: dict[str, Decimal]
    late_fee_assessed_at: datetime | None = None
    # when an installment that owes nothing at all came to (its loan's signing): it is paid
    # with no payment (installment_paid_at_iff_nothing_owed)
    settled_at: datetime | None = None
    # set once the fee run reached it: the fee it owes if not paid before ``late_from``; then
    # ``due["late_fee"]`` is decided by the replay, not given
    late_fee_charged: Decimal | None = None
    late_from: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaymentIn:
    id: int
    received_at: datetime
    provider: str
    provider_ref: str
    amount: Decimal  # after reversals, never negative

    @property
    def order(self) -> tuple[datetime, str, str]:
        return (self.received_at, self.provider, self.provider_ref)


@dataclass(slots=True)
class Allocated:
    lines: dict[Key, Decimal] = field(default_factory=dict)
    paid: dict[int, dict[str, Decimal]] = field(default_factory=dict)
    paid_at: dict[int, datetime | None] = field(default_factory=dict)
    unapplied: dict[int, Decimal] = field(default_factory=dict)
    # each installment's late fee as the replay decided it, and from when money pays it
    late_fee: dict[int, Decimal] = field(default_factory=dict)
    late_fee_assessed_at: dict[int, datetime | None] = field(default_factory=dict)

    def outstanding(self, installments: list[InstallmentDue]) -> Decimal:
        return sum(
            (
                self._due(inst, c) - self.paid[inst.id][c]
                for inst in installments
                for c in COMPONENTS
            ),
            ZERO,
        )

    def _due(self, inst: InstallmentDue, component: str) -> Decimal:
        if component == "late_fee" and inst.id in self.late_fee:
            return self.late_fee[inst.id]
        return inst.due[component]


_BASE = ("fee", "interest", "principal")


def allocate(installments: list[InstallmentDue], payments: list[PaymentIn]) -> Allocated:
    ordered_installments = sorted(installments, key=lambda i: i.sequence)
    result = Allocated()
    due: dict[int, dict[str, Decimal]] = {}
    # reached by the fee run, the fee not decided yet: (installment, late from, fee if late)
    undecided: list[tuple[InstallmentDue, datetime, Decimal]] = []
    for inst in ordered_installments:
        due[inst.id] = dict(inst.due)
        result.late_fee[inst.id] = inst.due["late_fee"]
        result.late_fee_assessed_at[inst.id] = inst.late_fee_assessed_at
        if inst.late_fee_charged is not None and inst.late_from is not None:
            due[inst.id]["late_fee"] = ZERO
            undecided.append((inst, inst.late_from, inst.late_fee_charged))
        result.paid[inst.id] = dict.fromkeys(COMPONENTS, ZERO)
        result.paid_at[inst.id] = None if any(due[inst.id].values()) else inst.settled_at
    lines: dict[Key, Decimal] = defaultdict(lambda: ZERO)

    def decide(until: datetime | None) -> None:
        """Each reached installment late by ``until`` (all of them for None) owes its fee if
        what was received before it became late did not pay it."""
        for entry in [e for e in undecided if until is None or e[1] <= until]:
            undecided.remove(entry)
            inst, late_from, charged = entry
            paid = result.paid[inst.id]
            fee = charged if any(paid[c] < due[inst.id][c] for c in _BASE) else ZERO
            due[inst.id]["late_fee"] = result.late_fee[inst.id] = fee
            payable_from = max(inst.late_fee_assessed_at or late_from, late_from)
            result.late_fee_assessed_at[inst.id] = payable_from if fee else None

    for payment in sorted(payments, key=lambda p: p.order):
        decide(payment.received_at)
        remaining = payment.amount
        for inst in ordered_installments:
            if remaining <= 0:
                break
            paid = result.paid[inst.id]
            assessed = result.late_fee_assessed_at[inst.id]
            for component in COMPONENTS:
                if component == "late_fee" and (assessed is None or assessed > payment.received_at):
                    continue
                take = min(remaining, due[inst.id][component] - paid[component])
                if take > 0:
                    paid[component] += take
                    lines[(payment.id, inst.id, component)] += take
                    remaining -= take
            if result.paid_at[inst.id] is None and all(
                paid[c] == due[inst.id][c] for c in COMPONENTS
            ):
                result.paid_at[inst.id] = payment.received_at
        result.unapplied[payment.id] = remaining
    decide(None)

    result.lines = dict(lines)
    return result


def ledger_delta(target: dict[Key, Decimal], current: dict[Key, Decimal]) -> dict[Key, Decimal]:
    """Signed amounts to append so the ledger's net equals ``target`` (credit > 0, debit < 0)."""
    delta = {}
    for key in target.keys() | current.keys():
        diff = target.get(key, ZERO) - current.get(key, ZERO)
        if diff:
            delta[key] = diff
    return delta


def allocate_next(
    installments: list[InstallmentDue],
    paid: dict[int, dict[str, Decimal]],
    paid_at: dict[int, datetime | None],
    payment: PaymentIn,
) -> Allocated:
    """Allocate one more payment on top of the books as they stand.

    Equal to ``allocate`` over all payments when ``payment`` comes last in the
    canonical order and nothing reverses it (tests/collections/test_allocation.py):
    replaying the earlier payments would give back ``paid`` exactly.
    """
    remaining = [
        InstallmentDue(
            id=inst.id,
            sequence=inst.sequence,
            late_fee_assessed_at=inst.late_fee_assessed_at,
            due={c: inst.due[c] - paid[inst.id][c] for c in COMPONENTS},
        )
        for inst in installments
    ]
    step = allocate(remaining, [payment])
    result = Allocated(lines=step.lines, unapplied=step.unapplied)
    for inst in installments:
        result.late_fee[inst.id] = inst.due["late_fee"]
        result.late_fee_assessed_at[inst.id] = inst.late_fee_assessed_at
        result.paid[inst.id] = {c: paid[inst.id][c] + step.paid[inst.id][c] for c in COMPONENTS}
        done = all(result.paid[inst.id][c] == inst.due[c] for c in COMPONENTS)
        result.paid_at[inst.id] = paid_at[inst.id] or (step.paid_at[inst.id] if done else None)
    return result
