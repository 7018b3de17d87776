"""A loan's situation in the customer's words: what the phone does now and why, and what
happens next and when. Shared by the self-service page and its live status."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.collections.models import PaymentAttempt
from apps.collections.selectors import LoanOverview
from apps.core.money import money_format as money
from apps.devices.selectors import PhoneSync
from apps.notifications.messages import NextStep, next_step_line

STAGE_NOW = {
    "reminder": _("You get payment reminders"),
    "wallpaper": _("The phone's screen shows a payment reminder"),
    "alarm": _("Payment reminder alarms ring on the phone"),
    "block_apps": _("Social apps are blocked"),
    "lock": _("The phone is locked (emergency calls always work)"),
}

SCHEDULE_STATUS = {
    "paid": _("paid"),
    "partial": _("partly paid"),
    "overdue": _("late"),
    "due": _("due"),
    "upcoming": _("upcoming"),
}

PAUSE_HOLDS = {
    "promise": _("Your promise to pay holds the restrictions back until %(date)s."),
    "hardship": _("A hardship pause holds the restrictions back until %(date)s."),
    "legal_hold": _("The loan is on hold until %(date)s: nothing more will be restricted."),
}


def day(value: object) -> str:
    return formats.date_format(value, "DATE_FORMAT", use_l10n=True)


def phone_words(overview: LoanOverview, phone: PhoneSync | None) -> str:
    """ "Social apps are blocked since 12 May because installment 3 is 15 days late." """
    loan = overview.loan
    if loan.status == "paid_off":
        if phone is not None and phone.status != "released":
            return gettext(
                "Paid off. The phone is being released: the lender can no longer restrict it."
            )
        return gettext("Paid off. The phone is yours: the lender can no longer restrict it.")
    if loan.released_with_arrears:
        return gettext(
            "The phone is yours: it was released when the loan was paid off, and the "
            "lender can no longer restrict it. Money is owed on this loan again since "
            "(a payment was reversed, or a late fee came due)."
        )
    if phone is None or phone.status != "enrolled":
        return gettext("No phone is linked to this loan yet.")
    if overview.stage == "none":
        if not phone.applied:
            return gettext(
                "The phone is being unlocked. This takes a few seconds once it is online."
            )
        return gettext("Your phone works normally.")
    words = gettext(
        "%(what)s since %(date)s because installment %(number)s is %(days)s days late."
    ) % {
        "what": STAGE_NOW[overview.stage],
        "date": day(overview.stage_since),
        "number": overview.late_installment,
        "days": overview.days_late,
    }
    if not phone.applied:
        words += " " + gettext("The phone is being updated.")
    return words


def phone_class(overview: LoanOverview, phone: PhoneSync | None) -> str:
    """How ``phone_words`` look: green only for a phone that works normally or is the
    customer's; a phone not linked yet is news, not good news."""
    loan = overview.loan
    if loan.status == "paid_off":
        return "success"
    if loan.released_with_arrears or phone is None or phone.status != "enrolled":
        return "notice"
    return f"stage-{overview.stage}"


def next_words(overview: LoanOverview) -> str:
    """What happens next and when: the next stage if nothing is paid, a pause, or the next
    installment."""
    loan = overview.loan
    if loan.status == "paid_off":
        return ""
    if overview.pause_until is not None:
        return str(PAUSE_HOLDS[overview.pause_kind]) % {"date": day(overview.pause_until)}
    if overview.next_stage_on is not None:
        step = NextStep(stage=overview.next_stage, on=overview.next_stage_on)
        return next_step_line(step)
    if overview.stage != "none":
        return gettext("Pay %(amount)s and the phone works normally again within seconds.") % {
            "amount": money(overview.arrears.amount, loan.currency)
        }
    if overview.next_due is not None:
        return gettext("Next installment: %(amount)s, due on %(date)s.") % {
            "amount": money(overview.next_due.amount.amount, loan.currency),
            "date": day(overview.next_due.due_date),
        }
    return ""


@dataclass(frozen=True, slots=True)
class OfflineCodeBox:
    """The unlock code the phone still needs, as the page shows it."""

    lead: str
    digits: str  # grouped for reading: "123 456 789"
    note: str


def offline_code_box(*, digits: str, releases: bool) -> OfflineCodeBox:
    """What to type on the lock screen when the phone cannot get its new state by itself."""
    if releases:
        return OfflineCodeBox(
            lead=gettext("Your phone is offline? Type this code on the lock screen to release it:"),
            digits=digits,
            note=gettext(
                "Your loan is paid off: the code frees the phone for good, with no internet."
            ),
        )
    return OfflineCodeBox(
        lead=gettext("Your phone is offline? Type this code on the lock screen:"),
        digits=digits,
        note=gettext(
            "It lifts the restrictions you paid for, with no internet. It works once, on this "
            "phone only."
        ),
    )


def grace_words(overview: LoanOverview, phone: PhoneSync | None, *, hours: int) -> str:
    """The emergency grace the lender allows on the lock screen, while the phone can be
    restricted; nothing when the lender turned it off."""
    loan = overview.loan
    if hours <= 0 or loan.status != "active" or loan.released_with_arrears:
        return ""
    if phone is None or phone.status != "enrolled":
        return ""
    return ngettext(
        "Once per restriction, you can lift a lock for %(hours)s hour from the lock screen, "
        "with no internet, to reach maps, a ride or your mobile money. The phone locks again "
        "when the time is up.",
        "Once per restriction, you can lift a lock for %(hours)s hours from the lock screen, "
        "with no internet, to reach maps, a ride or your mobile money. The phone locks again "
        "when the time is up.",
        hours,
    ) % {"hours": hours}


PROVIDER_NAMES = {"mpesa": "M-Pesa", "stripe": _("card")}


def attempt_words(attempt: PaymentAttempt | None, *, timezone_name: str) -> str:
    """Where the payment the customer started stands, in their words (times in the lender's
    ``timezone_name``)."""
    if attempt is None:
        return ""
    amount = money(attempt.amount, attempt.currency)
    status = attempt.status
    if status in ("starting", "started") and attempt.provider == "mpesa":
        return gettext(
            "We sent a payment request for %(amount)s to your phone: enter your M-Pesa PIN to "
            "pay. The phone's status changes here as soon as the money arrives."
        ) % {"amount": amount}
    if status in ("starting", "started"):
        return gettext("Your payment of %(amount)s is waiting for you on the payment page.") % {
            "amount": amount
        }
    if status == "pending" and attempt.voucher_number and attempt.voucher_expires_at:
        expires = timezone.localtime(attempt.voucher_expires_at, ZoneInfo(timezone_name))
        return gettext(
            "Pay %(amount)s in cash at any OXXO store with reference %(number)s by %(time)s "
            "on %(date)s. Your phone is updated as soon as the store confirms the payment."
        ) % {
            "amount": amount,
            "number": attempt.voucher_number,
            # the customer's clock (the lender's), never UTC: a day early is a day lost
            "time": formats.time_format(expires, "H:i"),
            "date": formats.date_format(expires, "DATE_FORMAT"),
        }
    if status == "pending":
        return gettext("Your payment of %(amount)s is waiting for the provider.") % {
            "amount": amount
        }
    if status == "paid":
        receipt = attempt.receipt or (attempt.payment.provider_ref if attempt.payment else "")
        return gettext("Payment of %(amount)s received, receipt %(receipt)s. Thank you.") % {
            "amount": amount,
            "receipt": receipt,
        }
    if status == "expired":
        return gettext("The payment request expired. Nothing was charged; you can try again.")
    return gettext("The payment did not go through. Nothing was charged; you can try again.")
