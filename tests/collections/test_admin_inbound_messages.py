"""The customer's texts in the back office: the "Messages to answer" work queue, the loan's
messages, and an agent marking those they answered (audited, the text never in the trail);
an answer to PAY shown without its login link's token."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import InboundMessage
from apps.collections.selectors import WorkQueue
from apps.collections.services import inbound_text_answer
from apps.integrations.messaging.base import Channel, InboundText
from apps.notifications.models import Notification
from tests.collections.factories import signed_loan

pytestmark = pytest.mark.django_db

WORDS = "Can I pay half now & the rest on Friday? <Wanjiku>"


def _texted(lender, loan, text: str, ref: str) -> InboundMessage | None:
    """``text`` from the loan's customer, as the callback endpoint hands it over."""
    return inbound_text_answer(
        lender=lender,
        text=InboundText(
            provider="africastalking",
            channel=Channel.SMS,
            sender=loan.customer.phone,
            text=text,
            provider_ref=ref,
        ),
    )


def _messages_url(loan) -> str:
    return reverse("admin:collections_loan_messages_handled", args=[loan.pk])


def test_an_agent_finds_the_message_answers_it_and_it_leaves_the_queue(
    lender_a, make_agent, verified_client
) -> None:
    loan = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=40))
    quiet = signed_loan(lender_a)
    first = _texted(lender_a, loan, WORDS, "ATXid_1")
    _texted(lender_a, loan, "BAL", "ATXid_2")  # answered at once: not for an agent
    agent = make_agent(lender_a)
    client = verified_client(agent)
    listing = client.get(
        reverse("admin:collections_loan_changelist"), {"queue": WorkQueue.MESSAGES_TO_ANSWER}
    ).content.decode()
    assert "Messages to answer" in listing
    assert loan.reference in listing
    assert quiet.reference not in listing

    page = client.get(reverse("admin:collections_loan_change", args=[loan.pk])).content.decode()
    assert "Messages from the customer" in page
    assert "Can I pay half now &amp; the rest on Friday? &lt;Wanjiku&gt;" in page  # escaped
    assert "1 message to answer" in page

    shown = client.get(_messages_url(loan))
    assert shown.status_code == 200
    assert re.search(r'name="ids" value="(\d+)"', shown.content.decode())[1] == str(first.pk)
    # one more comes in while the agent reads: it is not marked with those shown
    later = _texted(lender_a, loan, "and my phone is locked", "ATXid_3")
    refused = client.post(_messages_url(loan), {"ids": str(first.pk), "reason": "  "})
    assert refused.status_code == 200
    done = client.post(
        _messages_url(loan), {"ids": str(first.pk), "reason": "Called her: pays Friday."}
    )
    assert done.status_code == 302
    first.refresh_from_db()
    later.refresh_from_db()
    assert (first.handled_by, first.handled_note) == (agent, "Called her: pays Friday.")
    assert first.handled_at is not None
    assert later.handled_at is None
    event = AuditEvent.objects.get(action="collections.inbound_message.handled")
    assert (event.actor_type, event.actor_id, event.reason) == (
        "agent",
        str(agent.pk),
        "Called her: pays Friday.",
    )
    assert event.data == {"message_ids": [first.pk], "intents": ["other"]}
    # marking them again changes nothing and records nothing
    client.post(_messages_url(loan), {"ids": str(first.pk), "reason": "Again."})
    assert AuditEvent.objects.filter(action="collections.inbound_message.handled").count() == 1

    client.post(_messages_url(loan), {"ids": str(later.pk), "reason": "Unlocked with a PIN."})
    listing = client.get(
        reverse("admin:collections_loan_changelist"), {"queue": WorkQueue.MESSAGES_TO_ANSWER}
    ).content.decode()
    assert loan.reference not in listing
    assert (
        "message to answer"
        not in client.get(reverse("admin:collections_loan_change", args=[loan.pk])).content.decode()
    )


def test_another_lenders_agent_cannot_read_or_mark_the_messages(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    loan = signed_loan(lender_a)
    message = _texted(lender_a, loan, WORDS, "ATXid_9")
    other = verified_client(make_agent(lender_b))
    assert other.get(_messages_url(loan)).status_code == 404
    assert (
        other.post(_messages_url(loan), {"ids": str(message.pk), "reason": "x"}).status_code == 404
    )
    message.refresh_from_db()
    assert message.handled_at is None
    # a message of another loan of the same lender is not marked through this loan
    mine = signed_loan(lender_a)
    client = verified_client(make_agent(lender_a))
    client.post(_messages_url(mine), {"ids": str(message.pk), "reason": "Wrong loan."})
    message.refresh_from_db()
    assert message.handled_at is None


def test_an_answer_to_pay_shows_in_the_back_office_without_its_login_token(
    lender_a, make_agent, operator, verified_client
) -> None:
    loan = signed_loan(lender_a)
    _texted(lender_a, loan, "PAY", "ATXid_pay")
    answer = Notification.objects.get(loan=loan, kind="reply")
    token = re.search(r"/link/([^/\s]+)/", answer.body)[1]
    assert len(token) > 40
    pages = [
        verified_client(make_agent(lender_a)).get(
            reverse("admin:collections_loan_change", args=[loan.pk])
        ),
        verified_client(operator).get(
            reverse("admin:notifications_notification_change", args=[answer.pk])
        ),
    ]
    for page in pages:
        text = page.content.decode()
        assert page.status_code == 200
        assert f"/my/{lender_a.slug}/link/…/" in text
        assert token not in text
