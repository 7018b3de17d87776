"""Texts through the lender's own providers: sent on the first channel of the lender's order,
moved forward by the providers' delivery reports, fallen back once, stopped by an opt-out.

The providers are loopback fakes speaking their documented APIs; their callbacks are posted
to our endpoints as they would post them (signed, or on the lender's secret path)."""

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.audit.models import AuditEvent
from apps.core.logs import path_secrets_redacted
from apps.integrations.messaging.registry import messaging_callback_url
from apps.notifications.models import ContactOptOut, Notification
from apps.notifications.services import (
    Draft,
    notifications_dispatch,
    notifications_dispatch_for,
    notifications_queue,
)
from tests.collections.factories import signed_loan
from tests.integrations.messaging import TWILIO_NUMBER, TWILIO_SID, africastalking_for, twilio_for
from tests.integrations.whatsapp import PHONE_NUMBER_ID, VERIFY_TOKEN, whatsapp_for
from tests.notifications.callbacks import callback_path, form_post, twilio_post, whatsapp_post

pytestmark = pytest.mark.django_db

NAIROBI = ZoneInfo("Africa/Nairobi")
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=NAIROBI)  # inside Kenya's 07:00-20:00
NIGHT = datetime(2026, 11, 24, 21, 0, tzinfo=NAIROBI)
S = Notification.Status


def _queued(
    lender,
    kind: str = "overdue",
    loan=None,
    n: int = 1,
    at: datetime = MORNING,
    first_channel: str = "",
) -> Notification:
    """A message of ``kind`` queued at ``at`` for a loan whose phone is not enrolled (no
    push)."""
    loan = loan or signed_loan(lender)
    draft = Draft(
        customer_id=loan.customer_id,
        loan_id=loan.pk,
        kind=kind,
        locale="en",
        body=f"Message {n}",
        dedupe_key=f"test:{loan.pk}:{kind}:{n}",
        first_channel=first_channel,
    )
    with time_machine.travel(at, tick=False):
        notifications_queue(lender=lender, drafts=[draft])
    return Notification.objects.get(loan=loan, dedupe_key=draft.dedupe_key)


def _channels(lender, *order: str) -> None:
    lender.message_channels = list(order)
    lender.save(update_fields=["message_channels"])


def test_a_text_goes_by_the_lenders_sms_provider_and_its_reports_only_move_it_forward(
    lender_a, africastalking_fake, client
) -> None:
    africastalking_for(lender_a)
    notification = _queued(lender_a)
    with time_machine.travel(MORNING, tick=False):
        assert notifications_dispatch()["sms"] == 1
    [sent] = africastalking_fake.messages
    notification.refresh_from_db()
    assert (sent.to, sent.text) == (notification.customer.phone, "Message 1")
    assert (notification.status, notification.channel, notification.provider) == (
        S.SMS,
        "sms",
        "africastalking",
    )
    # Africa's Talking answers "Success" once the message is with the network
    assert (notification.provider_ref, notification.delivery) == (sent.message_id, "sent")

    path = callback_path("africastalking", lender_a, "delivery")
    assert (
        form_post(
            client, path, africastalking_fake.report_fields(sent.message_id, "Success")
        ).status_code
        == 200
    )
    notification.refresh_from_db()
    assert notification.delivery == "delivered"
    assert notification.delivered_at is not None
    # a report that arrives late, or twice, is behind what is recorded: nothing moves back
    assert (
        form_post(
            client, path, africastalking_fake.report_fields(sent.message_id, "Sent")
        ).status_code
        == 200
    )
    notification.refresh_from_db()
    assert notification.delivery == "delivered"
    # a report of a message the lender never sent is taken and changes nothing
    unknown = {**africastalking_fake.report_fields(sent.message_id), "id": "ATXid_unknown"}
    assert form_post(client, path, unknown).status_code == 200
    # the secret path token is the only proof it is Africa's Talking
    forged = path.replace(path.split("/")[-3], "0" * 40)
    answer = form_post(client, forged, africastalking_fake.report_fields(sent.message_id, "Failed"))
    assert answer.status_code == 403
    assert form_post(client, path.replace("lender-a", "no-such"), {}).status_code == 404
    notification.refresh_from_db()
    assert (notification.delivery, notification.status) == ("delivered", S.SMS)


def test_twilio_is_told_where_to_report_and_only_its_signed_reports_count(
    lender_a, twilio_fake, client
) -> None:
    twilio_for(lender_a)
    notification = _queued(lender_a)
    with time_machine.travel(MORNING, tick=False):
        notifications_dispatch()
    notification.refresh_from_db()
    message = twilio_fake.messages[notification.provider_ref]
    assert message.status_callback == messaging_callback_url(
        provider="twilio", lender_slug=lender_a.slug, route="delivery"
    )
    fields = twilio_fake.status_fields(notification.provider_ref, "delivered")
    assert twilio_post(client, lender_a, "delivery", fields, token="0" * 32).status_code == 403
    notification.refresh_from_db()
    assert notification.delivery == "queued"
    assert twilio_post(client, lender_a, "delivery", fields).status_code == 200
    notification.refresh_from_db()
    assert notification.delivery == "delivered"


def test_a_whatsapp_message_reported_failed_falls_back_to_sms_once(
    lender_a, whatsapp_fake, africastalking_fake, client
) -> None:
    whatsapp_for(lender_a)
    africastalking_for(lender_a)
    _channels(lender_a, "push", "whatsapp", "sms")
    notification = _queued(lender_a)
    with time_machine.travel(MORNING, tick=False):
        assert notifications_dispatch()["whatsapp"] == 1
        notification.refresh_from_db()
        wamid = notification.provider_ref
        assert whatsapp_fake.sent[wamid].text == "Message 1"
        failed = whatsapp_fake.status_body(wamid, "failed", code=131026)
        assert whatsapp_post(client, lender_a, whatsapp_fake, failed).status_code == 200
        notification.refresh_from_db()
        assert (notification.status, notification.fell_back_from) == (S.SCHEDULED, "whatsapp")
        assert notification.sent_at is None  # not a confirmed notice until sent again
        assert notifications_dispatch()["sms"] == 1
    [sms] = africastalking_fake.messages
    notification.refresh_from_db()
    assert (notification.channel, notification.provider_ref) == ("sms", sms.message_id)
    # its one fallback spent: the SMS failing too ends it, nothing goes a third time
    report = africastalking_fake.report_fields(sms.message_id, "Failed")
    with time_machine.travel(MORNING + timedelta(minutes=5), tick=False):
        form_post(client, callback_path("africastalking", lender_a, "delivery"), report)
        notifications_dispatch()
    notification.refresh_from_db()
    assert (notification.status, notification.delivery) == (S.FAILED, "failed")
    assert len(africastalking_fake.messages) == 1
    assert len(whatsapp_fake.sent) == 1


def test_an_answer_goes_first_on_the_channel_the_customer_wrote_on_then_falls_back_once(
    lender_a, whatsapp_fake, africastalking_fake, client
) -> None:
    whatsapp_for(lender_a)
    africastalking_for(lender_a)
    _channels(lender_a, "push", "whatsapp", "sms")
    # the customer wrote by SMS, at night: the answer goes at once, by SMS, not by WhatsApp
    answer = _queued(lender_a, "reply", at=NIGHT, first_channel="sms")
    with time_machine.travel(NIGHT, tick=False):
        assert notifications_dispatch()["sms"] == 1
    [sms] = africastalking_fake.messages
    assert whatsapp_fake.sent == {}
    answer.refresh_from_db()
    assert (answer.channel, answer.provider_ref) == ("sms", sms.message_id)
    # undelivered, it falls back to the lender's order without the SMS: WhatsApp, once
    report = africastalking_fake.report_fields(sms.message_id, "Failed")
    with time_machine.travel(NIGHT + timedelta(minutes=1), tick=False):
        form_post(client, callback_path("africastalking", lender_a, "delivery"), report)
        assert notifications_dispatch()["whatsapp"] == 1
    answer.refresh_from_db()
    assert (answer.channel, answer.fell_back_from) == ("whatsapp", "sms")
    assert len(africastalking_fake.messages) == 1
    # a lender that sends nothing by WhatsApp still answers there a customer who wrote there
    _channels(lender_a, "sms")
    other = _queued(lender_a, "reply", n=2, first_channel="whatsapp")
    with time_machine.travel(MORNING, tick=False):
        assert notifications_dispatch()["whatsapp"] == 1
    other.refresh_from_db()
    assert whatsapp_fake.sent[other.provider_ref].text == "Message 2"


def test_a_fallback_reported_at_night_waits_for_the_contact_window(
    lender_a, whatsapp_fake, africastalking_fake, client
) -> None:
    whatsapp_for(lender_a)
    africastalking_for(lender_a)
    notification = _queued(lender_a, at=NIGHT - timedelta(hours=2))
    with time_machine.travel(NIGHT - timedelta(hours=2), tick=False):
        notifications_dispatch()
    notification.refresh_from_db()
    with time_machine.travel(NIGHT, tick=False):
        body = whatsapp_fake.status_body(notification.provider_ref, "failed", code=131026)
        whatsapp_post(client, lender_a, whatsapp_fake, body)
        notifications_dispatch()
    assert africastalking_fake.messages == []
    notification.refresh_from_db()
    assert notification.scheduled_for == datetime(2026, 11, 25, 7, 0, tzinfo=NAIROBI)
    with time_machine.travel(datetime(2026, 11, 25, 7, 0, tzinfo=NAIROBI), tick=False):
        assert notifications_dispatch()["sms"] == 1


def test_a_text_never_reported_delivered_falls_back_once_after_the_wait(
    lender_a, whatsapp_fake, africastalking_fake, client, settings
) -> None:
    settings.TEXT_DELIVERY_MINUTES = 60
    whatsapp_for(lender_a)
    africastalking_for(lender_a)
    notification = _queued(lender_a)
    with time_machine.travel(MORNING, tick=False):
        notifications_dispatch()
    notification.refresh_from_db()
    wamid = notification.provider_ref
    with time_machine.travel(MORNING + timedelta(minutes=59), tick=False):
        assert notifications_dispatch()["fallback"] == 0
    with time_machine.travel(MORNING + timedelta(minutes=61), tick=False):
        assert notifications_dispatch()["fallback"] == 1
        assert notifications_dispatch()["fallback"] == 0
    assert len(africastalking_fake.messages) == 1
    # WhatsApp delivering it after all changes nothing: the message is the SMS now
    whatsapp_post(client, lender_a, whatsapp_fake, whatsapp_fake.status_body(wamid, "delivered"))
    notification.refresh_from_db()
    assert (notification.channel, notification.fell_back_from) == ("sms", "whatsapp")
    assert notification.provider_ref == africastalking_fake.messages[0].message_id


def test_stop_ends_reminders_on_that_channel_and_the_lock_notice_still_goes(
    lender_a, twilio_fake, client
) -> None:
    twilio_for(lender_a)
    loan = signed_loan(lender_a)
    phone = loan.customer.phone
    stop = twilio_fake.incoming_fields(
        account_sid=TWILIO_SID, sender=phone, to=TWILIO_NUMBER, body="Stop "
    )
    answer = twilio_post(client, lender_a, "inbound", stop)
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/xml"
    assert ContactOptOut.objects.filter(lender=lender_a, phone=phone, channel="sms").exists()
    event = AuditEvent.objects.get(action="notifications.contact.opted_out")
    assert event.data == {"channel": "sms", "how": "keyword", "phone_last4": phone[-4:]}
    twilio_post(client, lender_a, "inbound", stop)  # again: nothing new
    assert AuditEvent.objects.filter(action="notifications.contact.opted_out").count() == 1

    reminder = _queued(lender_a, "overdue", loan=loan)
    notice = _queued(lender_a, "notice", loan=loan, n=2)
    with time_machine.travel(MORNING, tick=False):
        counts = notifications_dispatch()
    assert (counts["opted_out"], counts["sms"]) == (1, 1)
    reminder.refresh_from_db()
    assert reminder.status == S.OPTED_OUT
    [sent] = twilio_fake.messages.values()
    assert sent.body == "Message 2 Reply STOP to stop reminders."

    start = twilio_fake.incoming_fields(
        account_sid=TWILIO_SID, sender=phone, to=TWILIO_NUMBER, body="START"
    )
    twilio_post(client, lender_a, "inbound", start)
    assert not ContactOptOut.objects.exists()
    _queued(lender_a, "due_soon", loan=loan, n=3)
    with time_machine.travel(MORNING, tick=False):
        assert notifications_dispatch()["sms"] == 1
    notice.refresh_from_db()
    assert notice.status == S.SMS


def test_the_providers_own_opt_out_signal_counts_as_stop(
    lender_a, africastalking_fake, client
) -> None:
    africastalking_for(lender_a)
    loan = signed_loan(lender_a)
    answer = form_post(
        client,
        callback_path("africastalking", lender_a, "optout"),
        {"senderId": "SMARTCOL", "phoneNumber": loan.customer.phone},
    )
    assert answer.status_code == 200
    opt_out = ContactOptOut.objects.get(lender=lender_a, phone=loan.customer.phone)
    assert (opt_out.channel, opt_out.source, opt_out.provider) == (
        "sms",
        "provider",
        "africastalking",
    )


def test_whatsapp_webhook_answers_the_verify_handshake_only_with_the_token(
    lender_a, whatsapp_fake, client
) -> None:
    whatsapp_for(lender_a)
    path = callback_path("whatsapp", lender_a)
    handshake = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = client.get(path, handshake)
    assert (answer.status_code, answer.content) == (200, b"1158201444")
    assert client.get(path, {**handshake, "hub.verify_token": "guess"}).status_code == 403
    inbound = whatsapp_fake.inbound_body(PHONE_NUMBER_ID, "+254712345678", text="hello")
    assert (
        whatsapp_post(client, lender_a, whatsapp_fake, inbound, secret="x" * 32).status_code == 403
    )


def test_no_number_text_or_path_token_reaches_the_logs(
    lender_a, africastalking_fake, client, caplog
) -> None:
    africastalking_for(lender_a)
    notification = _queued(lender_a)
    caplog.set_level(logging.DEBUG)
    africastalking_fake.refuse(notification.customer.phone, 403)  # an invalid number
    with time_machine.travel(MORNING, tick=False):
        notifications_dispatch()
    path = callback_path("africastalking", lender_a, "inbound")
    client.post(
        path, {"from": notification.customer.phone, "to": "12345", "text": "STOP", "id": "1"}
    )
    notification.refresh_from_db()
    assert (notification.status, notification.error) == (S.FAILED, "invalid_number")
    assert notification.customer.phone not in caplog.text
    assert notification.customer.phone[1:] not in caplog.text
    assert "Message 1" not in caplog.text
    token = path.split("/")[-3]
    assert token not in path_secrets_redacted(f"Forbidden: {path}")


def test_whatsapp_messages_go_as_the_lenders_approved_template_in_the_customers_language(
    lender_a, whatsapp_fake
) -> None:
    whatsapp_for(lender_a, message_template="payment_receipt")  # approved in English only
    notification = _queued(lender_a)
    with time_machine.travel(MORNING, tick=False):
        assert notifications_dispatch()["whatsapp"] == 1
    notification.refresh_from_db()
    sent = whatsapp_fake.sent[notification.provider_ref]
    assert (sent.kind, sent.template) == ("template", ("payment_receipt", "en", ("Message 1",)))
    # a Spanish customer's message asks for the Spanish template, which was never approved:
    # WhatsApp refuses it for good, and the message goes by SMS instead
    spanish = _queued(lender_a, n=2)
    Notification.objects.filter(pk=spanish.pk).update(locale="es")
    with time_machine.travel(MORNING, tick=False):
        counts = notifications_dispatch()
    assert (counts["whatsapp"], counts["sms"]) == (0, 1)
    spanish.refresh_from_db()
    assert (spanish.channel, spanish.fell_back_from) == ("sms", "whatsapp")


def test_a_backlog_drains_batch_after_batch_and_a_run_hands_on_when_its_time_is_up(
    lender_a, africastalking_fake
) -> None:
    africastalking_for(lender_a)
    loan = signed_loan(lender_a)
    for n in range(5):
        _queued(lender_a, loan=loan, n=n)
    with time_machine.travel(MORNING, tick=False):
        first = notifications_dispatch_for(seconds=0, batch=2)
        assert (first["sms"], first["more"]) == (2, 1)  # out of time with more due
        rest = notifications_dispatch_for(seconds=60, batch=2)
    assert (rest["sms"], rest["more"]) == (3, 0)
    assert sorted(m.text for m in africastalking_fake.messages) == [
        f"Message {n}" for n in range(5)
    ]
