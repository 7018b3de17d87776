"""Which of an agent's actions on a loan the rules allow now: each asked of the check its own
service makes before it writes, so the loan's page offers only what would be accepted and
says, before the agent types a reason, why the rest would be refused."""

from __future__ import annotations

from collections.abc import Callable

from apps.collections.models import Loan, LoanPause
from apps.collections.services.manual import (
    loan_cancel_check,
    loan_manual_lock_check,
    loan_reminder_check,
)
from apps.collections.services.pauses import loan_pause_check
from apps.collections.services.support_pins import loan_support_pin_phone
from apps.core.errors import DomainError

Kind = LoanPause.Kind


def loan_action_refusals(*, loan: Loan) -> dict[str, str]:
    """The actions of the loan's page the rules refuse now (by the name of
    ``LOAN_ACTIONS`` and the support PIN's), each with the refusal its service would
    give. Reads only; the service checks again under its lock when the agent submits."""
    checks: dict[str, Callable[[], object]] = {
        "promise": lambda: loan_pause_check(loan, kind=Kind.PROMISE),
        "hardship": lambda: loan_pause_check(loan, kind=Kind.HARDSHIP),
        "legal-hold": lambda: loan_pause_check(loan, kind=Kind.LEGAL_HOLD),
        "lock": lambda: loan_manual_lock_check(loan),
        "resend": lambda: loan_reminder_check(loan),
        "cancel": lambda: loan_cancel_check(loan),
        "support-pin": lambda: loan_support_pin_phone(loan),
    }
    refusals = {}
    for action, check in checks.items():
        try:
            check()
        except DomainError as exc:
            refusals[action] = str(exc.message)
    return refusals
