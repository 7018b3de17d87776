"""What each message to a customer says: the lender's text of its kind, in the customer's
language (``apps.lenders.messages``, which the lender's admin may rewrite).

Every overdue message ends with "what happens next and when": the next
stage of the loan's policy and the date it applies if nothing is paid.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import timezone, translation

from apps.core.money import Money
from apps.lenders.messages import (
    NEXT_STAGE,
    MessageBook,
    NextStep,
    next_step_line,
    offline_code_pointer_line,
)
from apps.lenders.models import MessageTemplate

__all__ = ["NEXT_STAGE", "NextStep", "next_step_line", "render"]

Kind = MessageTemplate.Kind


def render(
    kind: str,
    *,
    locale: str,
    currency: str,
    book: MessageBook | None = None,
    amount: Decimal | None = None,
    due: date | None = None,
    days: int = 0,
    step: NextStep | None = None,
    balance: Decimal | None = None,
    sent_on: date | None = None,
    reference: str = "",
    offline_note: bool = False,
) -> str:
    """The message of a notification ``kind`` from ``book`` (the lender's texts; None: the
    shipped ones). ``offline_note``: a receipt says where the phone's unlock code comes."""
    book = book or MessageBook()
    money = Money(amount or Decimal(0), currency)
    if kind == "due_soon":
        if due is None:
            raise ValueError("a due_soon message needs its due date")
        return book.render(Kind.DUE_SOON, locale, {"amount": money, "due_date": due})
    if kind == "due_today":
        # held past its due date by a rest day or a holiday: "today" would be false
        late = due is not None and sent_on is not None and sent_on > due
        return book.render(
            Kind.DUE_PAST if late else Kind.DUE_TODAY,
            locale,
            {"amount": money, "due_date": due or sent_on or timezone.localdate()},
        )
    with translation.override(locale):
        if kind == "overdue":
            return book.render(
                Kind.OVERDUE, locale, {"days": days, "next_step": next_step_line(step)}
            )
        if kind == "notice":
            if step is None:
                raise ValueError("a notice names the stage it announces")
            return book.render(
                Kind.LOCK_NOTICE,
                locale,
                {"days": days, "action": str(NEXT_STAGE[step.stage]), "action_date": step.on},
            )
        if kind == "payment":
            values: dict[str, object] = {
                "amount": money,
                "balance": Money(balance or Decimal(0), currency),
                "offline_note": offline_code_pointer_line() if offline_note else "",
            }
            if reference:
                # the provider's own receipt (an M-Pesa receipt number), as in the customer's SMS
                return book.render(Kind.RECEIPT_REF, locale, {**values, "reference": reference})
            return book.render(Kind.RECEIPT, locale, values)
    raise ValueError(f"unknown kind {kind!r}")
