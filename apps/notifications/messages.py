"""What each message says, in the customer's language (Django's gettext).

Every overdue message ends with "what happens next and when": the next
stage of the loan's policy and the date it applies if nothing is paid.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import translation
from django.utils.translation import gettext

from apps.core.money import money_format
from apps.lenders.messages import NEXT_STAGE, NextStep, day_format, next_step_line

__all__ = ["NEXT_STAGE", "NextStep", "next_step_line", "render"]


def render(
    kind: str,
    *,
    locale: str,
    currency: str,
    amount: Decimal | None = None,
    due: date | None = None,
    days: int = 0,
    step: NextStep | None = None,
    balance: Decimal | None = None,
    sent_on: date | None = None,
    reference: str = "",
) -> str:
    with translation.override(locale):
        if kind == "due_soon":
            if due is None:
                raise ValueError("a due_soon message needs its due date")
            text = gettext("Your installment of %(amount)s is due on %(date)s.") % {
                "amount": money_format(amount or Decimal(0), currency),
                "date": day_format(due),
            }
        elif kind == "due_today" and due is not None and sent_on is not None and sent_on > due:
            # held past its due date by a rest day or a holiday: "today" would be false
            text = gettext("Your installment of %(amount)s was due on %(date)s.") % {
                "amount": money_format(amount or Decimal(0), currency),
                "date": day_format(due),
            }
        elif kind == "due_today":
            text = gettext("Your installment of %(amount)s is due today.") % {
                "amount": money_format(amount or Decimal(0), currency)
            }
        elif kind == "overdue":
            text = gettext("Your installment is %(days)s days late.") % {"days": days}
            text = " ".join(filter(None, [text, next_step_line(step)]))
        elif kind == "payment" and reference:
            # the provider's own receipt (an M-Pesa receipt number), as in the customer's SMS
            text = gettext(
                "We received %(amount)s, receipt %(reference)s. Thank you. Left to pay: "
                "%(balance)s."
            ) % {
                "amount": money_format(amount or Decimal(0), currency),
                "reference": reference,
                "balance": money_format(balance or Decimal(0), currency),
            }
        elif kind == "payment":
            text = gettext("We received %(amount)s. Thank you. Left to pay: %(balance)s.") % {
                "amount": money_format(amount or Decimal(0), currency),
                "balance": money_format(balance or Decimal(0), currency),
            }
        else:
            raise ValueError(f"unknown kind {kind!r}")
    return text


def offline_code_hint(*, locale: str, digits: str, releases: bool) -> str:
    """What to do with an offline unlock code (its digits grouped for reading): the line a
    receipt ends with, and the heart of the code's own SMS."""
    with translation.override(locale):
        if releases:
            return gettext(
                "If your phone is offline, type this code on its lock screen to release it: "
                "%(code)s"
            ) % {"code": digits}
        return gettext(
            "If your phone is offline, type this code on its lock screen to unlock it: %(code)s"
        ) % {"code": digits}


def offline_code_text(*, locale: str, digits: str, releases: bool) -> str:
    """The SMS that carries an offline unlock code."""
    with translation.override(locale):
        opening = gettext("Your loan is paid off.") if releases else gettext("Payment received.")
    return f"{opening} {offline_code_hint(locale=locale, digits=digits, releases=releases)}"


def offline_code_pointer(*, locale: str) -> str:
    """The line a receipt ends with while the phone has not taken its new state: where the
    unlock code is (its digits are never stored in a message)."""
    with translation.override(locale):
        return gettext(
            "If your phone is offline, its unlock code comes in a separate SMS and shows on "
            "your page."
        )
