"""The demo's messages, as `make run` plays them: the demo lenders' messaging accounts and the
loopback fakes of Africa's Talking, WhatsApp and Twilio (tools/fakes/demo.py) configured alike,
so that a text dispatched for a demo lender reaches its fake, is printed there (the number's
last four digits), and its delivery report comes back to the live server, signed as the
provider signs it, and marks it delivered; a customer's STOP, played from the fake, stops the
reminders on that channel."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.collections.models import Loan
from apps.demo import providers
from apps.integrations.messaging.registry import messaging_callback_url
from apps.integrations.models import ProviderAccount
from apps.lenders.models import Lender
from apps.notifications.models import ContactOptOut, Notification
from apps.notifications.services import Draft, notifications_dispatch, notifications_queue
from tests.waiting import wait_for
from tools.fakes.demo import messaging_fakes

pytestmark = pytest.mark.django_db(transaction=True)

# inside Kenya's contact hours; Mexico's receipts go at any hour
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Africa/Nairobi"))


@pytest.fixture
def fakes(live_server, settings):
    """The demo's messaging fakes on loopback, reporting delivery half a second after a
    message; the demo's settings, calling the live server back."""
    africastalking, whatsapp, twilio = messaging_fakes(report_after=0.5)
    settings.AFRICASTALKING_API_BASE = africastalking.start()
    settings.WHATSAPP_API_BASE = whatsapp.start()
    settings.TWILIO_API_BASE = twilio.start()
    settings.DEMO_BASE_URL = settings.PAYMENTS_CALLBACK_BASE_URL = live_server.url
    yield africastalking, whatsapp, twilio
    for fake in (africastalking, whatsapp, twilio):
        fake.stop()


def _send(loan: Loan, kind: str, n: int) -> Notification:
    """Queue a message of ``kind`` to the loan's customer and dispatch what is due."""
    draft = Draft(
        customer_id=loan.customer_id,
        loan_id=loan.pk,
        kind=kind,
        locale="en",
        body=f"Demo message {n}",
        dedupe_key=f"demo-test:{n}",
    )
    notifications_queue(lender=loan.lender, drafts=[draft])
    notifications_dispatch()
    return Notification.objects.get(dedupe_key=draft.dedupe_key)


def _delivered(notification: Notification) -> Notification:
    wait_for(lambda: Notification.objects.get(pk=notification.pk).delivery == "delivered")
    return Notification.objects.get(pk=notification.pk)


def test_the_demo_lenders_texts_go_through_the_fakes_and_come_back_delivered(
    fakes, live_server, settings, capsys
) -> None:
    africastalking, whatsapp, twilio = fakes
    call_command("seed_demo")
    seeded = capsys.readouterr().out
    kenya, mexico = Lender.objects.get(slug="demo-ke"), Lender.objects.get(slug="demo-mx")
    assert (kenya.message_channels, mexico.message_channels) == (
        ["push", "whatsapp", "sms"],
        ["push", "sms"],
    )
    # seeding typed the addresses the back office shows into the fakes' dashboards, and
    # the server answered WhatsApp's verify-token handshake
    app = africastalking.apps[providers.AFRICASTALKING_USERNAME]
    assert app.callback_urls == {
        route: messaging_callback_url(provider="africastalking", lender_slug="demo-ke", route=route)
        for route in ("delivery", "inbound", "optout")
    }
    number = whatsapp.accounts[providers.WHATSAPP_PHONE_NUMBER_ID]
    wait_for(lambda: number.webhook_url == f"{live_server.url}/api/messaging/v1/whatsapp/demo-ke/")
    assert twilio.webhooks[providers.TWILIO_FROM_NUMBER][1] == messaging_callback_url(
        provider="twilio", lender_slug="demo-mx", route="inbound"
    )
    brian = Loan.objects.get(customer__full_name="Brian Otieno")  # his phone is not enrolled
    lucia = Loan.objects.get(lender=mexico)
    phone = brian.customer.phone
    # and it says how a customer replies, with the command that does it
    assert (
        f"-m tools.fakes.africastalking reply --url {settings.AFRICASTALKING_API_BASE} {phone} STOP"
    ) in seeded

    with time_machine.travel(MORNING, tick=True):
        # Kenya: WhatsApp first (the phone cannot be pushed), as the account's approved
        # template, reported sent then delivered
        receipt = _delivered(_send(brian, "payment", 1))
        [sent] = whatsapp.sent.values()
        assert sent.template == (providers.WHATSAPP_TEMPLATE, "en", ("Demo message 1",))
        assert (receipt.channel, receipt.provider, receipt.provider_ref) == (
            "whatsapp",
            "whatsapp",
            sent.wamid,
        )
        # the customer writes STOP on WhatsApp: the next reminder goes by SMS, and Africa's
        # Talking's delivery report comes back on the lender's secret path
        assert whatsapp.reply(sender=phone, text="STOP")["sent"]
        assert ContactOptOut.objects.filter(lender=kenya, phone=phone, channel="whatsapp").exists()
        reminder = _delivered(_send(brian, "overdue", 2))
        [sms] = africastalking.messages
        assert (reminder.channel, reminder.provider, reminder.provider_ref) == (
            "sms",
            "africastalking",
            sms.message_id,
        )
        assert (sms.sender_id, sms.text) == (providers.AFRICASTALKING_SHORTCODE, "Demo message 2")
        assert africastalking.reply(sender=phone, text="STOP")["sent"]
        assert ContactOptOut.objects.filter(lender=kenya, phone=phone, channel="sms").exists()
        # Mexico: by Twilio, its status callbacks signed with the account's auth token
        mexican = _delivered(_send(lucia, "payment", 3))
        assert (mexican.channel, mexican.provider) == ("sms", "twilio")
        assert twilio.messages[mexican.provider_ref].status == "delivered"
        # Twilio's Advanced Opt-Out reads a STOP as one, and says so
        assert twilio.reply(sender=lucia.customer.phone, text="stop")["sent"]
        opt_out = ContactOptOut.objects.get(lender=mexico, channel="sms")
        assert (opt_out.phone, opt_out.source) == (lucia.customer.phone, "provider")

    printed = capsys.readouterr().out
    assert f"whatsapp: template account_message (en) to ...{phone[-4:]}: Demo message 1" in printed
    assert f"africastalking: SMS to ...{phone[-4:]}: Demo message 2" in printed
    assert f"twilio: SMS to ...{lucia.customer.phone[-4:]}: Demo message 3" in printed
    assert "delivered, report 200" in printed
    # the numbers' last four digits only
    for number in (phone, lucia.customer.phone):
        assert number.removeprefix("+")[:-4] not in printed
    assert AuditEvent.objects.filter(action="notifications.contact.opted_out").count() == 3


def test_seeding_again_keeps_the_accounts_and_the_order_a_demo_user_set(fakes) -> None:
    call_command("seed_demo")
    kenya = Lender.objects.get(slug="demo-ke")
    kenya.message_channels = ["sms"]
    kenya.save(update_fields=["message_channels"])
    saved = AuditEvent.objects.filter(action="integrations.provider_account.saved").count()
    call_command("seed_demo")
    kenya.refresh_from_db()
    assert kenya.message_channels == ["sms"]
    assert sorted(ProviderAccount.objects.values_list("lender__slug", "provider")) == [
        ("demo-ke", "africastalking"),
        ("demo-ke", "mpesa"),
        ("demo-ke", "whatsapp"),
        ("demo-mx", "funds_alerts"),
        ("demo-mx", "stripe"),
        ("demo-mx", "twilio"),
        ("demo-mx", "twilio_voice"),
    ]
    assert AuditEvent.objects.filter(action="integrations.provider_account.saved").count() == saved
    # the fakes forget the addresses when they stop: seeding types them in again
    assert fakes[0].apps[providers.AFRICASTALKING_USERNAME].callback_urls
