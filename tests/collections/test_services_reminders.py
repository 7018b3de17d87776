"""The reminders and receipts collections decides (apps/collections/services/reminders.py);
notifications queues and delivers them."""

from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from apps.collections.services import payment_receipt_queue, payment_record, reminders_queue
from apps.core.actor import Actor
from apps.core.money import Money
from apps.notifications.models import Notification
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import LenderFactory
from tests.lenders.markets import MONDAY, SUNDAY, local, opening
from tests.notifications.wording import django_date

pytestmark = pytest.mark.django_db


def test_due_date_reminders_go_three_days_before_and_on_the_day_once(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    first = device.loan.installments.order_by("sequence").first()
    assert (
        reminders_queue(lender_id=lender_a.pk, business_date=first.due_date - timedelta(days=3))
        == 1
    )
    assert (
        reminders_queue(lender_id=lender_a.pk, business_date=first.due_date - timedelta(days=3))
        == 0
    )
    assert reminders_queue(lender_id=lender_a.pk, business_date=first.due_date) == 1
    soon, today = Notification.objects.filter(loan=device.loan).order_by("id")
    assert soon.kind == "due_soon"
    amount = f"{first.total_due:,.2f}"
    assert soon.body == f"Your installment of KES {amount} is due on {django_date(first.due_date)}."
    assert (today.kind, today.body.endswith("is due today.")) == ("due_today", True)


def test_a_payment_receipt_says_what_is_left_once(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    loan = device.loan
    total = sum(i.total_due for i in loan.installments.all())
    outcome = payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal(1000), lender_a.currency),
        channel="manual",
        provider="manual",
        provider_ref="r-1",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Cash.",
    )
    assert payment_receipt_queue(payment_id=outcome.payment.pk) is True
    assert payment_receipt_queue(payment_id=outcome.payment.pk) is False
    receipt = Notification.objects.get(loan=loan, kind="payment")
    assert (
        receipt.body
        == f"We received KES 1,000.00. Thank you. Left to pay: KES {total - 1000:,.2f}."
    )


def test_a_due_today_reminder_held_past_its_due_date_names_the_date_when_it_fell_on_sunday() -> (
    None
):
    lender = LenderFactory(country="CO", currency="COP", timezone="America/Bogota")
    device, _, _ = enrolled_phone(
        lender, signed_at=datetime(2026, 10, 22, 15, tzinfo=ZoneInfo("UTC"))
    )
    first = device.loan.installments.order_by("sequence").first()
    assert first.due_date == SUNDAY
    with time_machine.travel(local("CO", SUNDAY, time(6)), tick=False):
        assert reminders_queue(lender_id=lender.pk, business_date=SUNDAY) == 1
    reminder = Notification.objects.get(loan=device.loan, kind="due_today")
    assert reminder.scheduled_for == opening("CO", MONDAY)  # read on Monday: not "today"
    assert (
        reminder.body
        == f"Your installment of COP {first.total_due:,.2f} was due on 22 November 2026."
    )
