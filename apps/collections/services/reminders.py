"""Which reminders and receipts a loan's customer is due, and what they say.

Decided here, from the loan's installments and payments; ``apps.notifications``
queues the drafts and delivers them within the country's contact rules.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from apps.collections.selectors import installment_list_due_on, payment_receipt_facts
from apps.customers.selectors import customer_locales
from apps.devices.selectors import offline_code_waiting_for_loan
from apps.lenders.messages import message_book
from apps.lenders.selectors import lender_get
from apps.notifications.messages import render
from apps.notifications.models import Notification
from apps.notifications.rules import contact_slot
from apps.notifications.services import Draft, notifications_queue


def reminders_queue(*, lender_id: int, business_date: date) -> int:
    """Queue "due in 3 days" and "due today" reminders for the lender's business date.

    Run each morning with the sweep; safe to run twice (one message per
    installment and kind). A "due today" reminder that waits past its due date
    (due on a Sunday or a holiday) names the date instead. Returns how many
    were queued.
    """
    lender = lender_get(lender_id=lender_id)
    soon = business_date + timedelta(days=3)
    due = installment_list_due_on(lender_id=lender_id, dates=[business_date, soon])
    # the local date the reminders will be read on: later than today on a closed day
    slot = contact_slot(country=lender.country, tz=lender.timezone, at=timezone.now())
    sent_on = slot.astimezone(ZoneInfo(lender.timezone)).date()
    locales = customer_locales(customer_ids={r.customer_id for r in due})
    book = message_book(lender)
    drafts = []
    for row in due:
        kind = (
            Notification.Kind.DUE_TODAY
            if row.due_date == business_date
            else Notification.Kind.DUE_SOON
        )
        locale = locales.get(row.customer_id, lender.locale)
        body = render(
            kind,
            book=book,
            locale=locale,
            currency=row.currency,
            amount=row.outstanding,
            due=row.due_date,
            sent_on=sent_on,
        )
        drafts.append(
            Draft(
                customer_id=row.customer_id,
                loan_id=row.loan_id,
                kind=kind,
                locale=locale,
                body=body,
                dedupe_key=f"{kind}:{row.installment_id}",
            )
        )
    with transaction.atomic():
        return notifications_queue(lender=lender, drafts=drafts)


def payment_receipt_queue(*, payment_id: int) -> bool:
    """Tell the customer the money arrived and what is left (sent at once, any hour), and,
    while the phone has not taken its new state, where its offline unlock code is.

    Started after the payment commits; safe to run twice (one receipt per
    payment). Returns whether it was queued now.
    """
    receipt = payment_receipt_facts(payment_id=payment_id)
    lender = lender_get(lender_id=receipt.lender_id)
    locale = customer_locales(customer_ids=[receipt.customer_id]).get(
        receipt.customer_id, lender.locale
    )
    # while the phone has not taken the state the payment wrote, it may be offline: the
    # receipt says where its unlock code is. The code's digits go in an SMS of their own,
    # never into a stored message
    waiting = offline_code_waiting_for_loan(loan_id=receipt.loan_id, lender_id=receipt.lender_id)
    body = render(
        Notification.Kind.PAYMENT,
        book=message_book(lender),
        locale=locale,
        currency=receipt.amount.currency,
        amount=receipt.amount.amount,
        balance=receipt.outstanding.amount,
        reference=receipt.receipt_ref,
        offline_note=waiting is not None,
    )
    draft = Draft(
        customer_id=receipt.customer_id,
        loan_id=receipt.loan_id,
        kind=Notification.Kind.PAYMENT,
        locale=locale,
        body=body,
        dedupe_key=f"payment:{payment_id}",
    )
    with transaction.atomic():
        return notifications_queue(lender=lender, drafts=[draft]) == 1
