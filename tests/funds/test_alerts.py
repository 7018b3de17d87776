"""Funds alerts: a signed alert that money arrived sends a late customer a link to pay what is
due, within the rules; everything else is refused or ignored as it deserves, and audited.

The alerts are signed as an aggregator signs them, with Standard Webhooks' own library, and
posted to our endpoint, so its verification runs for real."""

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

from apps.audit.models import AuditEvent
from apps.collections.models import FundsAlert
from apps.collections.services import loan_promise_record
from apps.core.actor import Actor
from apps.customers.services import account_reading_consent_revoke
from apps.notifications.models import Notification
from tests.collections.factories import signed_loan
from tests.customers.factories import CustomerFactory
from tests.funds.accounts import ALERTS_SECRET, funds_account, reading_consent

pytestmark = pytest.mark.django_db

NAIROBI = ZoneInfo("Africa/Nairobi")
SIGNED = datetime(2026, 10, 1, 10, 0, tzinfo=NAIROBI)
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=NAIROBI)  # a Tuesday, inside 07:00-20:00
NIGHT = datetime(2026, 11, 24, 21, 0, tzinfo=NAIROBI)
URL = "/api/funds/v1/alerts"


def alert_body(reference: str, *, amount: str = "5400.00") -> bytes:
    return json.dumps(
        {
            "type": "funds.available",
            "customer_reference": reference,
            "provider": "plaid",
            "amount_available": amount,
            "currency": "KES",
            "observed_at": "2026-11-24T06:59:00+00:00",
        }
    ).encode()


def post_alert(
    client,
    lender,
    body: bytes,
    *,
    at: datetime = MORNING,
    webhook_id: str = "",
    secret: str = ALERTS_SECRET,
    sent_at: datetime | None = None,
):
    """``body`` posted at ``at``, signed with ``secret`` as sent at ``sent_at`` (``at``)."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    sent_at = sent_at or at
    signature = Webhook(secret).sign(webhook_id, sent_at, body)
    with time_machine.travel(at, tick=False):
        return client.post(
            URL,
            body,
            content_type="application/json",
            HTTP_X_LENDER=lender.slug,
            HTTP_WEBHOOK_ID=webhook_id,
            HTTP_WEBHOOK_TIMESTAMP=str(int(sent_at.timestamp())),
            HTTP_WEBHOOK_SIGNATURE=signature,
        )


@pytest.fixture
def late(lender_a):
    """A late loan whose customer consented to account reading, at a lender taking alerts."""
    funds_account(lender_a)
    with time_machine.travel(SIGNED, tick=False):
        loan = signed_loan(lender_a)
    with time_machine.travel(MORNING - timedelta(days=1), tick=False):
        consent = reading_consent(loan.customer)
    return loan, consent


def outcome_of(answer) -> str:
    assert answer.status_code == 200, answer.content
    return answer.json()["outcome"]


def test_an_alert_sends_a_link_to_pay_the_amount_due(client, lender_a, late) -> None:
    loan, consent = late
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference))) == "sent"
    [link] = Notification.objects.filter(loan=loan, kind=Notification.Kind.FUNDS)
    alert = FundsAlert.objects.get(loan=loan)
    assert alert.amount_due > 0
    assert f"{alert.amount_due:,.2f}" in link.body
    assert "/link/" in link.body
    assert link.scheduled_for == MORNING  # at once: inside contact hours
    assert link.status == Notification.Status.SCHEDULED
    event = AuditEvent.objects.get(action="collections.funds_alert.received")
    assert event.lender_id == lender_a.pk
    assert (event.data["outcome"], event.data["provider"]) == ("sent", "plaid")
    assert "5400" not in json.dumps(event.data)  # the customer's balance is not the lender's


def test_a_wrong_signature_is_refused_and_recorded_off_the_lenders_chain(
    client, lender_a, late
) -> None:
    _loan, consent = late
    body = alert_body(consent.reference)
    answer = post_alert(client, lender_a, body, secret="whsec_" + "A" * 32)
    assert answer.status_code == 401
    assert answer.json()["code"] == "signature_invalid"
    assert not FundsAlert.objects.exists()
    rejected = AuditEvent.objects.get(action="collections.webhook.rejected")
    assert rejected.lender_id is None
    assert rejected.data["provider"] == "funds_alerts"


def test_an_alert_for_an_unknown_lender_is_refused_like_a_wrong_signature(client, late) -> None:
    _loan, consent = late
    other = CustomerFactory().lender  # a lender without funds alerts
    answer = post_alert(client, other, alert_body(consent.reference))
    assert answer.status_code == 401


def test_a_stale_alert_is_refused(client, lender_a, late) -> None:
    _loan, consent = late
    body = alert_body(consent.reference)
    answer = post_alert(client, lender_a, body, sent_at=MORNING - timedelta(minutes=6))
    assert answer.status_code == 401
    assert answer.json()["code"] == "timestamp_stale"
    assert not Notification.objects.filter(kind=Notification.Kind.FUNDS).exists()


def test_a_replayed_alert_does_nothing_more(client, lender_a, late) -> None:
    loan, consent = late
    body = alert_body(consent.reference)
    assert outcome_of(post_alert(client, lender_a, body, webhook_id="msg_1")) == "sent"
    later = MORNING + timedelta(minutes=2)
    assert outcome_of(post_alert(client, lender_a, body, webhook_id="msg_1", at=later)) == (
        "duplicate"
    )
    assert Notification.objects.filter(loan=loan, kind=Notification.Kind.FUNDS).count() == 1
    assert AuditEvent.objects.filter(action="collections.funds_alert.received").count() == 1


def test_an_alert_for_an_unknown_customer_is_ignored_and_audited(client, lender_a, late) -> None:
    answer = post_alert(client, lender_a, alert_body("arc_nobody"))
    assert outcome_of(answer) == "unknown_customer"
    assert not Notification.objects.filter(kind=Notification.Kind.FUNDS).exists()
    event = AuditEvent.objects.get(action="collections.funds_alert.received")
    assert (event.lender_id, event.data["outcome"]) == (lender_a.pk, "unknown_customer")


def test_an_alert_under_an_expired_consent_is_ignored(client, lender_a, late) -> None:
    _loan, consent = late
    after = MORNING + timedelta(days=180)
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference), at=after)) == (
        "consent_expired"
    )
    assert not Notification.objects.filter(kind=Notification.Kind.FUNDS).exists()


def test_an_alert_under_a_revoked_consent_is_ignored(client, lender_a, late) -> None:
    loan, consent = late
    with time_machine.travel(MORNING - timedelta(hours=1), tick=False):
        account_reading_consent_revoke(
            customer_id=loan.customer_id, lender_id=lender_a.pk, actor=Actor.system()
        )
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference))) == (
        "consent_revoked"
    )
    assert not Notification.objects.filter(kind=Notification.Kind.FUNDS).exists()


def test_an_alert_for_a_paused_loan_is_ignored(client, lender_a, late) -> None:
    loan, consent = late
    with time_machine.travel(MORNING - timedelta(hours=1), tick=False):
        loan_promise_record(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            until=MORNING.date() + timedelta(days=3),
            actor=Actor.system(),
            reason="Promised by phone.",
        )
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference))) == (
        "loan_paused"
    )
    assert not Notification.objects.filter(kind=Notification.Kind.FUNDS).exists()


def test_an_alert_for_a_current_loan_is_ignored(client, lender_a) -> None:
    funds_account(lender_a)
    with time_machine.travel(MORNING - timedelta(days=2), tick=False):
        loan = signed_loan(lender_a)  # its first installment is a month away
        consent = reading_consent(loan.customer)
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference))) == (
        "loan_current"
    )
    assert not Notification.objects.filter(kind=Notification.Kind.FUNDS).exists()


def test_at_most_one_link_a_day_per_loan(client, lender_a, late) -> None:
    loan, consent = late
    body = alert_body(consent.reference)
    assert outcome_of(post_alert(client, lender_a, body)) == "sent"
    later = MORNING + timedelta(hours=3)
    assert outcome_of(post_alert(client, lender_a, body, at=later)) == "already_today"
    tomorrow = MORNING + timedelta(days=1)
    assert outcome_of(post_alert(client, lender_a, body, at=tomorrow)) == "sent"
    assert Notification.objects.filter(loan=loan, kind=Notification.Kind.FUNDS).count() == 2


def test_an_alert_outside_contact_hours_sends_nothing(client, lender_a, late) -> None:
    _loan, consent = late
    answer = post_alert(client, lender_a, alert_body(consent.reference), at=NIGHT)
    assert outcome_of(answer) == "outside_hours"
    assert not Notification.objects.filter(kind=Notification.Kind.FUNDS).exists()


def test_a_body_that_is_no_alert_is_refused(client, lender_a, late) -> None:
    answer = post_alert(client, lender_a, b'{"type": "funds.available"}')
    assert answer.status_code == 400


def test_the_link_goes_as_written_and_not_to_a_number_that_said_stop(
    client, lender_a, late, sms_outbox
) -> None:
    from apps.notifications.models import ContactOptOut
    from apps.notifications.services import notifications_dispatch

    loan, consent = late
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference))) == "sent"
    with time_machine.travel(MORNING, tick=False):
        notifications_dispatch()
    link = Notification.objects.get(loan=loan, kind=Notification.Kind.FUNDS)
    assert sms_outbox[-1] == (loan.customer.phone, link.body)  # a reminder: no STOP hint
    ContactOptOut.objects.create(
        lender=lender_a, phone=loan.customer.phone, channel="sms", source="keyword"
    )
    tomorrow = MORNING + timedelta(days=1)
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference), at=tomorrow)) == (
        "sent"
    )
    sent = len(sms_outbox)
    with time_machine.travel(tomorrow, tick=False):
        notifications_dispatch()
    assert len(sms_outbox) == sent
    second = Notification.objects.filter(loan=loan, kind=Notification.Kind.FUNDS).latest("id")
    assert second.status == Notification.Status.OPTED_OUT


def test_the_link_goes_first_on_the_channel_the_customer_last_wrote_on(
    client, lender_a, late
) -> None:
    from apps.collections.models import InboundMessage

    loan, consent = late
    for n, (channel, hours) in enumerate((("sms", 30), ("whatsapp", 20))):
        InboundMessage.objects.create(
            lender=lender_a,
            customer=loan.customer,
            loan=loan,
            channel=channel,
            provider=channel,
            provider_ref=f"in-{n}",
            text="BAL",
            received_at=MORNING - timedelta(hours=hours),
            intent="balance",
        )
    assert outcome_of(post_alert(client, lender_a, alert_body(consent.reference))) == "sent"
    link = Notification.objects.get(loan=loan, kind=Notification.Kind.FUNDS)
    assert link.first_channel == "whatsapp"
