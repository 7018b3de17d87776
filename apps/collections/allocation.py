"""Payment allocation: which part of which payment pays which component of which installment.

Pure arithmetic, no database, so it can be checked with hypothesis
(tests/collections/test_allocation.py). The result depends only on the set of
payments, reversals and late-fee assessments, never on the order they
arrived in: payments are replayed in a canonical order, (received_at,
provider, provider_ref), and a reversal reduces its payment whenever it came.

For each payment, oldest installment first: late fee, fee, interest, then
principal; what is left pays the following installments (an overpayment) and
what is left after the last one stays unapplied, as a credit. A late fee is
only payable by payments received after it was assessed.
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

    def outstanding(self, installments: list[InstallmentDue]) -> Decimal:
        return sum(
            (inst.due[c] - self.paid[inst.id][c] for inst in installments for c in COMPONENTS), ZERO
        )


def allocate(installments: list[InstallmentDue], payments: list[PaymentIn]) -> Allocated:
    ordered_installments = sorted(installments, key=lambda i: i.sequence)
    result = Allocated()
    for inst in ordered_installments:
        result.paid[inst.id] = dict.fromkeys(COMPONENTS, ZERO)
        result.paid_at[inst.id] = None if any(inst.due.values()) else inst.settled_at
    lines: dict[Key, Decimal] = defaultdict(lambda: ZERO)

    for payment in sorted(payments, key=lambda p: p.order):
        remaining = payment.amount
        for inst in ordered_installments:
            if remaining <= 0:
                break
            paid = result.paid[inst.id]
            for component in COMPONENTS:
                if component == "late_fee" and (
                    inst.late_fee_assessed_at is None
                    or inst.late_fee_assessed_at > payment.received_at
                ):
                    continue
                take = min(remaining, inst.due[component] - paid[component])
                if take > 0:
                    paid[component] += take
                    lines[(payment.id, inst.id, component)] += take
                    remaining -= take
            if result.paid_at[inst.id] is None and all(paid[c] == inst.due[c] for c in COMPONENTS):
                result.paid_at[inst.id] = payment.received_at
        result.unapplied[payment.id] = remaining

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
        result.paid[inst.id] = {c: paid[inst.id][c] + step.paid[inst.id][c] for c in COMPONENTS}
        done = all(result.paid[inst.id][c] == inst.due[c] for c in COMPONENTS)
        result.paid_at[inst.id] = paid_at[inst.id] or (step.paid_at[inst.id] if done else None)
    return result
