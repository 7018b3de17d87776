"""The lender's texts on the real send paths: what the back office previews is what the
customer's phone receives (the fake SMS gateway's outbox), and a new version goes out at
once."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.collections.selectors import loan_outstanding
from apps.collections.services import payment_receipt_queue, payment_record, reminders_queue
from apps.core.actor import Actor
from apps.core.money import Money
from apps.customers.services import consent_code_send, customer_login_code_send
from apps.devices.models import Device, OfflineToken
from apps.devices.selectors import offline_code_digits
from apps.lenders.messages import message_preview
from apps.lenders.models import Membership, MessageTemplate
from apps.notifications.models import Notification
from apps.notifications.services import notifications_dispatch
from tests.collections.offline import locked_phone, pay_cash
from tests.customers.factories import CustomerFactory
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import message_text_for
from tests.notifications.wording import django_date

pytestmark = pytest.mark.django_db

Kind = MessageTemplate.Kind


def test_the_preview_is_what_the_payment_receipts_sms_says(
    lender_a, make_agent, sms_outbox
) -> None:
    admin = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN)
    text = (
        "{lender}: {amount} received (M-Pesa {reference}).\nStill to pay: {balance}. {offline_note}"
    )
    message_text_for(lender_a, Kind.RECEIPT_REF, "en", text, admin)
    device, _, _ = enrolled_phone(lender_a)  # no push address: the receipt goes by SMS
    loan = device.loan
    outcome = payment_record(
        loan_id=loan.pk,
        amount=Money(Decimal("1500"), lender_a.currency),
        channel="provider",
        provider="mpesa",
        provider_ref="ws_CO_1",
        receipt_ref="SBK4H7XQ2M",
        received_at=timezone.now(),
        actor=Actor.system(),
    )
    assert payment_receipt_queue(payment_id=outcome.payment.pk) is True
    assert notifications_dispatch()["sms"] == 1
    [(to, body)] = sms_outbox
    assert to == loan.customer.phone
    preview = message_preview(
        lender=lender_a,
        kind=Kind.RECEIPT_REF,
        language="en",
        text=text,
        values={
            "amount": Money(Decimal("1500"), "KES"),
            "reference": "SBK4H7XQ2M",
            "balance": loan_outstanding(loan=loan),
            "offline_note": "",
        },
    )
    assert preview.errors == []
    assert body == preview.text
    assert body.startswith(
        "Lender A: KES 1,500.00 received (M-Pesa SBK4H7XQ2M).\nStill to pay: KES "
    )


def test_a_new_login_code_text_goes_out_at_once_and_the_old_one_is_kept(
    lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    customer = CustomerFactory(lender=lender_a, locale="es")
    message_text_for(lender_a, Kind.LOGIN_CODE, "es", "Código de {lender}: {code}")

    def send() -> str:
        with django_capture_on_commit_callbacks(execute=True):
            customer_login_code_send(
                customer_id=customer.pk, request_key=str(uuid.uuid4()), actor=Actor.system()
            )
        return sms_outbox[-1][1]

    assert send().startswith("Código de Lender A: ")
    message_text_for(lender_a, Kind.LOGIN_CODE, "es", "{code} es su código de {lender}.")
    assert send().endswith(" es su código de Lender A.")
    assert list(
        MessageTemplate.objects.filter(lender=lender_a, kind=Kind.LOGIN_CODE).values_list(
            "version", flat=True
        )
    ) == [2, 1]


def test_the_consent_code_is_written_in_the_customers_language_with_the_lenders_text(
    lender_a, sms_outbox
) -> None:
    customer = CustomerFactory(lender=lender_a, locale="zh-hans")
    colon = "\uff1a"  # Chinese punctuation
    message_text_for(lender_a, Kind.CONSENT_CODE, "zh-hans", "{lender}验证码" + colon + "{code}")
    consent_code_send(customer=customer, text="The terms.", actor=Actor.system())
    [(_, body)] = sms_outbox
    assert body.startswith("Lender A验证码" + colon)
    assert len(body) == len("Lender A验证码" + colon) + 6


def test_the_due_date_reminder_is_written_in_the_lenders_words(lender_a) -> None:
    message_text_for(lender_a, Kind.DUE_SOON, "en", "{lender} here: {amount} is due {due_date}.")
    device, _, _ = enrolled_phone(lender_a)
    first = device.loan.installments.order_by("sequence").first()
    reminders_queue(lender_id=lender_a.pk, business_date=first.due_date - timedelta(days=3))
    reminder = Notification.objects.get(loan=device.loan, kind="due_soon")
    assert reminder.body == (
        f"Lender A here: KES {first.total_due:,.2f} is due {django_date(first.due_date)}."
    )


def test_the_offline_unlock_code_goes_in_the_lenders_words(
    lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    message_text_for(lender_a, Kind.OFFLINE_UNLOCK, "en", "{lender}. Offline? Type {code}")
    device, loan = locked_phone(lender_a)
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now() - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    digits = offline_code_digits(code=OfflineToken.objects.get(device=device))
    assert sms_outbox == [
        (
            loan.customer.phone,
            f"Lender A. Offline? Type {digits[:3]} {digits[3:6]} {digits[6:]}",
        )
    ]
