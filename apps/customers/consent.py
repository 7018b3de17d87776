"""The consent text shown at the counter, in the customer's language.

Everything a customer agrees to, in plain words: the schedule, the restriction
ladder of the lender's policy in force with its days, what always keeps
working, how a phone offline is unlocked (codes by SMS, a support PIN, the emergency
grace), what the phone agent reads and does not read, and how the phone is released on
payoff. Its exact text, version and SHA-256 are recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils import formats, translation
from django.utils.translation import gettext as _

from apps.core.money import Money, amount_format
from apps.lenders.models import RestrictionPolicyVersion
from apps.lenders.selectors import restriction_stages_describe

CONSENT_TEXT_VERSION = "pos-consent-2026-12"


@dataclass(frozen=True, slots=True)
class ConsentTerms:
    """The figures of the loan that the consent text states, as plain values: the caller
    (the sale at the counter) computes them from its quote."""

    device_price: Money
    down_payment: Money
    financed: Money
    installments: int
    first_due_date: date
    first_amount: Decimal
    total: Decimal


def consent_text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def consent_text_build(
    *,
    lender_name: str,
    customer_name: str,
    terms: ConsentTerms,
    policy_version: RestrictionPolicyVersion,
    locale: str,
    emergency_grace_hours: int = 0,
) -> str:
    currency = terms.financed.currency
    with translation.override(locale):
        lines = [
            _("%(customer)s finances a phone with %(lender)s.")
            % {"customer": customer_name, "lender": lender_name},
            _(
                "Cash price %(price)s %(cur)s, down payment %(down)s %(cur)s, financed %(financed)s %(cur)s. "
                "You pay %(count)s installments, the first of %(first)s %(cur)s on %(date)s; "
                "%(total)s %(cur)s in all, interest and fees included."
            )
            % {
                "price": amount_format(terms.device_price.amount, currency),
                "down": amount_format(terms.down_payment.amount, currency),
                "financed": amount_format(terms.financed.amount, currency),
                "cur": currency,
                "count": terms.installments,
                "first": amount_format(terms.first_amount, currency),
                "date": formats.date_format(terms.first_due_date, "DATE_FORMAT"),
                "total": amount_format(terms.total, currency),
            },
            _("If an installment is late, the phone is restricted step by step:"),
            *[
                f"- {stage}"
                for stage in restriction_stages_describe(version=policy_version, locale=locale)
            ],
            _(
                "Emergency calls always work, and so do calls to the lender and paying. "
                "A payment lifts the restrictions within seconds."
            ),
            _(
                "If the phone is offline when you pay, you receive an unlock code by SMS; typing "
                "it on the lock screen lifts what your payment covers, without a network. A "
                "lender's agent can also give you a one-time PIN for the code your lock screen "
                "shows."
            ),
            *(
                [
                    _(
                        "Once per restriction, and at most once in 30 days, you can lift a lock "
                        "yourself from the lock screen for %(hours)s hours (to reach a map, a "
                        "ride home or your mobile money); the lock returns when they end."
                    )
                    % {"hours": emergency_grace_hours}
                ]
                if emergency_grace_hours
                else []
            ),
            _(
                "The lender's app on the phone reads only what it needs: the phone's identity "
                "(IMEI, serial), whether its SIM card changed, and whether its own settings were tampered with. "
                "It does not read your messages, calls, contacts, photos or location."
            ),
            _(
                "When the loan is paid off, the app releases the phone for good and removes itself; "
                "the lender can no longer restrict it."
            ),
            _("By confirming with the code sent to your phone, you agree to these terms."),
        ]
    return "\n".join(lines)


ACCOUNT_READING_TEXT_VERSION = "account-reading-2026-12"


def account_reading_text_build(
    *, lender_name: str, provider_name: str, days: int, locale: str
) -> str:
    """The consent to account reading, in the customer's language: who reads what, why,
    for how long, and how to stop it. Its exact text, version and SHA-256 are recorded."""
    with translation.override(locale):
        lines = [
            _(
                "You let %(provider)s read the balance of your account and tell %(lender)s "
                "when money arrives in it, so that %(lender)s can send you a link to pay an "
                "installment that is due at that moment."
            )
            % {"provider": provider_name, "lender": lender_name},
            _(
                "%(lender)s learns only that money arrived and how much is available; it does "
                "not see your transactions and cannot move money."
            )
            % {"lender": lender_name},
            _(
                "This consent lasts %(days)s days. You can withdraw it at any time on your page; "
                "the alerts stop at once."
            )
            % {"days": days},
        ]
    return "\n".join(lines)
