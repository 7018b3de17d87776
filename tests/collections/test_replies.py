"""Answers to the customers' texts, through the real callback endpoints: a text a provider's
loopback fake posts as it would (Africa's Talking on the lender's secret path, Twilio and
WhatsApp signed), answered through the lender's own providers, which the fakes receive."""

import logging
import re
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import InboundMessage, LoanPause
from apps.collections.selectors import (
    WorkQueue,
    installment_list_open,
    loan_days_overdue,
    loan_outstanding,
    loan_overview,
    loan_work_queue,
)
from apps.collections.services import loan_promise_record
from apps.collections.services.replies import (
    REPLIES_PER_DAY,
    promise_date_read,
    reply_intent_read,
)
from apps.core.actor import Actor
from apps.core.money import Money
from apps.customers.models import Customer
from apps.lenders.messages import day_format, default_text, message_render
from apps.lenders.models import MessageTemplate
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification
from tests.collections.factories import signed_loan
from tests.collections.work_queues import pay
from tests.integrations.messaging import TWILIO_NUMBER, TWILIO_SID, africastalking_for, twilio_for
from tests.integrations.whatsapp import PHONE_NUMBER_ID, whatsapp_for
from tests.notifications.callbacks import callback_path, form_post, twilio_post, whatsapp_post
from tools.fakes.africastalking import FakeAfricasTalking

pytestmark = pytest.mark.django_db

Kind, Intent = MessageTemplate.Kind, InboundMessage.Intent
SHORTCODE = "22384"


@pytest.fixture
def sms(lender_a, africastalking_fake) -> FakeAfricasTalking:
    """Lender A answers by Africa's Talking (its only text channel)."""
    africastalking_for(lender_a)
    return africastalking_fake


def _late_loan(lender, *, days: int = 40):
    """A loan signed ``days`` ago: its first installment is past its due date and grace."""
    return signed_loan(lender, signed_at=timezone.now() - timedelta(days=days))


def _text(client, lender, sender: str, text: str, *, ref: str = "", capture=None):
    """``text`` from ``sender`` as Africa's Talking posts it to ``lender``'s inbound route;
    the answer's dispatch (started after the commit) runs before this returns."""
    fields = FakeAfricasTalking.incoming_fields(sender=sender, to=SHORTCODE, text=text)
    if ref:
        fields["id"] = ref
    with capture(execute=True):
        answer = form_post(client, callback_path("africastalking", lender, "inbound"), fields)
    assert answer.status_code == 200
    return answer


def _answers_to(fake: FakeAfricasTalking, phone: str) -> list[str]:
    return [message.text for message in fake.messages if message.to == phone]


def _promise_date(on: date, language: str) -> str:
    return f"{on.day}/{on.month}" if language == "es" else f"{on.month}/{on.day}"


# --- each keyword, in each language ---------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "language"), [("BAL", "en"), ("Saldo", "es"), ("余额", "zh-hans")]
)
def test_bal_answers_the_balance_and_what_is_late_in_the_keywords_language(
    lender_a, sms, client, django_capture_on_commit_callbacks, keyword, language
) -> None:
    loan = _late_loan(lender_a)
    phone = loan.customer.phone
    _text(client, lender_a, phone, keyword, capture=django_capture_on_commit_callbacks)
    oldest = installment_list_open(loan=loan).first()
    arrears = loan_overview(loan=loan).arrears
    assert arrears.amount > 0
    expected = message_render(
        lender=lender_a,
        kind=Kind.REPLY_BALANCE_LATE,
        language=language,
        values={
            "balance": loan_outstanding(loan=loan),
            "amount": arrears,
            "due_date": oldest.due_date,
            "days": loan_days_overdue(loan=loan),
        },
    )
    assert _answers_to(sms, phone) == [expected]
    notification = Notification.objects.get(loan=loan)
    assert (notification.kind, notification.locale, notification.channel) == (
        "reply",
        language,
        "sms",
    )
    message = InboundMessage.objects.get(loan=loan)
    assert (message.intent, message.answer, message.needs_agent) == (
        Intent.BALANCE,
        Kind.REPLY_BALANCE_LATE,
        False,
    )


@pytest.mark.parametrize(("keyword", "language"), [("bal.", "en"), ("SALDO", "es")])
def test_bal_on_a_loan_not_late_names_the_next_installment(
    lender_a, sms, client, django_capture_on_commit_callbacks, keyword, language
) -> None:
    loan = signed_loan(lender_a)
    _text(
        client, lender_a, loan.customer.phone, keyword, capture=django_capture_on_commit_callbacks
    )
    first = installment_list_open(loan=loan).first()
    expected = message_render(
        lender=lender_a,
        kind=Kind.REPLY_BALANCE,
        language=language,
        values={
            "balance": loan_outstanding(loan=loan),
            "amount": Money(first.outstanding, loan.currency),
            "due_date": first.due_date,
        },
    )
    assert _answers_to(sms, loan.customer.phone) == [expected]


def test_bal_and_pay_on_a_paid_off_loan_say_nothing_is_left(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    loan = signed_loan(lender_a)
    pay(loan, loan_outstanding(loan=loan).amount, "MP-ALL")
    loan.refresh_from_db()
    assert loan.status == "paid_off"
    phone = loan.customer.phone
    _text(client, lender_a, phone, "BAL", capture=django_capture_on_commit_callbacks)
    _text(client, lender_a, phone, "PAY", capture=django_capture_on_commit_callbacks)
    nothing = default_text(Kind.REPLY_NOTHING_DUE, "en")
    assert _answers_to(sms, phone) == [nothing, nothing]


@pytest.mark.parametrize(
    ("keyword", "language", "words"),
    [
        ("PAY", "en", "To pay, open"),
        ("pagar", "es", "Para pagar, abra"),
        ("付款", "zh-hans", "还款请打开"),
    ],
)
def test_pay_answers_a_link_that_logs_the_customer_in_once(
    lender_a, sms, client, django_capture_on_commit_callbacks, keyword, language, words
) -> None:
    loan = _late_loan(lender_a)
    phone = loan.customer.phone
    _text(client, lender_a, phone, keyword, capture=django_capture_on_commit_callbacks)
    [answer] = _answers_to(sms, phone)
    assert answer.startswith(words)
    link = re.search(r"https?://\S+/link/[^/\s]+/", answer)
    assert link is not None
    path = urlsplit(link.group()).path
    assert path.startswith(f"/my/{lender_a.slug}/link/")
    opened = client.get(path)
    assert opened.status_code == 302
    assert opened["Location"] == reverse("customers:home", kwargs={"lender_slug": lender_a.slug})
    assert (
        client.get(reverse("customers:home", kwargs={"lender_slug": lender_a.slug})).status_code
        == 200
    )
    client.logout()
    assert client.get(path).status_code == 410  # once
    # minted as the customer, audited; the link itself is in no audit event
    event = AuditEvent.objects.get(action="customers.login.link_minted")
    assert (event.actor_type, event.actor_id) == ("customer", str(loan.customer_id))
    assert link.group() not in str(AuditEvent.objects.values_list("data", flat=True))


@pytest.mark.parametrize(
    ("keyword", "language"), [("HELP", "en"), ("Ayuda!", "es"), ("帮助", "zh-hans")]
)
def test_help_answers_what_can_be_done_by_text(
    lender_a, sms, client, django_capture_on_commit_callbacks, keyword, language
) -> None:
    loan = signed_loan(lender_a)
    _text(
        client, lender_a, loan.customer.phone, keyword, capture=django_capture_on_commit_callbacks
    )
    assert _answers_to(sms, loan.customer.phone) == [default_text(Kind.REPLY_HELP, language)]


@pytest.mark.parametrize(
    ("keyword", "language"), [("PROMISE", "en"), ("Promesa", "es"), ("承诺", "zh-hans")]
)
def test_a_promise_within_the_rules_is_recorded_as_the_customers(
    lender_a, sms, client, django_capture_on_commit_callbacks, keyword, language
) -> None:
    loan = _late_loan(lender_a)
    phone = loan.customer.phone
    until = lender_local_date(lender=lender_a) + timedelta(days=5)
    text = f"{keyword} {_promise_date(until, language)}"
    _text(client, lender_a, phone, text, capture=django_capture_on_commit_callbacks)
    pause = LoanPause.objects.get(loan=loan)
    assert (pause.kind, pause.status, pause.ends_on) == ("promise", "active", until)
    assert pause.requested_by == f"customer:{loan.customer_id}"
    event = AuditEvent.objects.get(action="collections.pause.opened")
    assert (event.actor_type, event.actor_id, event.data["kind"]) == (
        "customer",
        str(loan.customer_id),
        "promise",
    )
    expected = message_render(
        lender=lender_a,
        kind=Kind.REPLY_PROMISE,
        language=language,
        values={"amount": loan_overview(loan=loan).arrears, "promise_date": until},
    )
    assert _answers_to(sms, phone) == [expected]


# --- a promise outside the rules --------------------------------------------------------


def test_a_promise_outside_the_rules_is_refused_with_the_reason(
    lender_a, sms, client, django_capture_on_commit_callbacks, settings
) -> None:
    settings.PROMISE_MAX_DAYS = 14
    capture = django_capture_on_commit_callbacks
    loan = _late_loan(lender_a)
    phone = loan.customer.phone
    today = lender_local_date(lender=lender_a)

    def refused(reason: str, language: str = "en") -> str:
        return message_render(
            lender=lender_a,
            kind=Kind.REPLY_NO_PROMISE,
            language=language,
            values={"reason": reason},
        )

    far = today + timedelta(days=30)
    _text(client, lender_a, phone, f"PROMISE {far.month}/{far.day}", capture=capture)
    _text(client, lender_a, phone, f"PROMESA {far.day}/{far.month}", capture=capture)
    _text(client, lender_a, phone, "PROMISE next friday", capture=capture)
    soon = today + timedelta(days=3)
    _text(client, lender_a, phone, f"PROMISE {soon.month}/{soon.day}", capture=capture)
    _text(client, lender_a, phone, f"PROMISE {soon.month}/{soon.day}", capture=capture)
    assert _answers_to(sms, phone) == [
        refused("the date must be between today and 14 days from today."),
        refused("la fecha debe estar entre hoy y dentro de 14 días.", "es"),
        refused("we could not read the date. Write it as month/day, such as PROMISE 12/15."),
        message_render(
            lender=lender_a,
            kind=Kind.REPLY_PROMISE,
            language="en",
            values={"amount": loan_overview(loan=loan).arrears, "promise_date": soon},
        ),
        refused(f"you already have a promise open until {day_format(soon)}."),
    ]
    assert LoanPause.objects.filter(loan=loan).count() == 1
    refusals = InboundMessage.objects.filter(loan=loan).order_by("id")
    assert [m.refusal for m in refusals] == ["too_far", "too_far", "unreadable", "", "already_open"]
    # a loan with nothing late: nothing to promise
    current = signed_loan(lender_a)
    _text(
        client,
        lender_a,
        current.customer.phone,
        f"PROMISE {soon.month}/{soon.day}",
        capture=capture,
    )
    assert _answers_to(sms, current.customer.phone) == [
        refused("nothing on your loan is late, so there is nothing to promise.")
    ]
    assert not LoanPause.objects.filter(loan=current).exists()


# --- who gets an answer -----------------------------------------------------------------


def test_an_unknown_number_gets_nothing_about_any_loan(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    signed_loan(lender_a)  # the lender has customers, this number is none of them
    stranger = "+254799999001"
    for text in ("BAL", "PAY", "HELP", "PROMISE 12/15", "hello, who is this?"):
        _text(client, lender_a, stranger, text, capture=django_capture_on_commit_callbacks)
    assert sms.messages == []
    assert not InboundMessage.objects.exists()
    assert not Notification.objects.exists()


def test_a_customer_of_lender_b_writing_to_lender_a_gets_nothing_of_b(
    lender_a, lender_b, sms, client, django_capture_on_commit_callbacks
) -> None:
    capture = django_capture_on_commit_callbacks
    theirs = _late_loan(lender_b)
    _text(client, lender_a, theirs.customer.phone, "SALDO", capture=capture)
    _text(client, lender_a, theirs.customer.phone, "PAGAR", capture=capture)
    assert sms.messages == []
    # one person borrowing from both: lender A's number answers about lender A's loan only
    mine = _late_loan(lender_a)
    Customer.objects.filter(pk=theirs.customer_id).update(phone=mine.customer.phone)
    _text(client, lender_a, mine.customer.phone, "BAL", capture=capture)
    [answer] = _answers_to(sms, mine.customer.phone)
    assert "KES" in answer
    assert "MXN" not in answer
    assert not InboundMessage.objects.filter(loan=theirs).exists()
    assert not Notification.objects.filter(loan=theirs).exists()


def test_of_several_loans_the_answer_is_about_the_one_late_longest(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    newer = _late_loan(lender_a, days=40)
    older = _late_loan(lender_a, days=70)
    # the newer loan's customer is the older one's: one person, two phones financed
    type(older).objects.filter(pk=older.pk).update(customer_id=newer.customer_id)
    _text(client, lender_a, newer.customer.phone, "BAL", capture=django_capture_on_commit_callbacks)
    assert InboundMessage.objects.get().loan_id == older.pk
    assert Notification.objects.get().loan_id == older.pk


# --- once, and within limits ------------------------------------------------------------


def test_a_callback_delivered_again_is_answered_once(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    capture = django_capture_on_commit_callbacks
    loan = _late_loan(lender_a)
    phone = loan.customer.phone
    until = lender_local_date(lender=lender_a) + timedelta(days=2)
    for _ in range(3):
        _text(client, lender_a, phone, "BAL", ref="ATXid_bal_1", capture=capture)
        _text(
            client,
            lender_a,
            phone,
            f"PROMISE {until.month}/{until.day}",
            ref="ATXid_p_1",
            capture=capture,
        )
    assert len(_answers_to(sms, phone)) == 2
    assert InboundMessage.objects.filter(loan=loan).count() == 2
    assert LoanPause.objects.filter(loan=loan).count() == 1
    assert "already" not in " ".join(_answers_to(sms, phone))


def test_a_customer_gets_at_most_the_days_answers_and_the_rest_waits_for_an_agent(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    loan = signed_loan(lender_a)
    for _ in range(REPLIES_PER_DAY + 2):
        _text(
            client,
            lender_a,
            loan.customer.phone,
            "HELP",
            capture=django_capture_on_commit_callbacks,
        )
    assert len(_answers_to(sms, loan.customer.phone)) == REPLIES_PER_DAY
    assert InboundMessage.objects.filter(loan=loan, needs_agent=True, answer="").count() == 2


# --- anything else ---------------------------------------------------------------------


def test_anything_else_waits_for_an_agent_and_the_customer_is_told_once_a_day(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    capture = django_capture_on_commit_callbacks
    loan = _late_loan(lender_a)
    other = signed_loan(lender_a)
    Customer.objects.filter(pk=loan.customer_id).update(locale="es")
    phone = loan.customer.phone
    _text(client, lender_a, phone, "I lost my job, can I pay in two weeks?", capture=capture)
    _text(client, lender_a, phone, "pay me back my deposit", capture=capture)
    assert _answers_to(sms, phone) == [default_text(Kind.REPLY_RECEIVED, "es")]
    waiting = InboundMessage.objects.filter(loan=loan).order_by("id")
    assert [(m.intent, m.needs_agent, m.handled_at) for m in waiting] == [
        (Intent.OTHER, True, None),
        (Intent.OTHER, True, None),
    ]
    assert waiting[0].text == "I lost my job, can I pay in two weeks?"
    queue = loan_work_queue(
        type(loan).objects.all(),
        queue=WorkQueue.MESSAGES_TO_ANSWER,
        today=lender_local_date(lender=lender_a),
    )
    assert list(queue) == [loan]
    assert other not in queue


# --- channels ---------------------------------------------------------------------------


def test_a_text_is_answered_on_the_channel_it_came_on(
    lender_a, whatsapp_fake, twilio_fake, client, django_capture_on_commit_callbacks
) -> None:
    whatsapp_for(lender_a)
    twilio_for(lender_a)
    lender_a.message_channels = ["sms", "whatsapp"]
    lender_a.save(update_fields=["message_channels"])
    loan = signed_loan(lender_a)
    phone = loan.customer.phone
    body = whatsapp_fake.inbound_body(PHONE_NUMBER_ID, phone, text="Ayuda")
    with django_capture_on_commit_callbacks(execute=True):
        assert whatsapp_post(client, lender_a, whatsapp_fake, body).status_code == 200
    [sent] = whatsapp_fake.sent.values()
    assert (sent.to, sent.text) == (phone.removeprefix("+"), default_text(Kind.REPLY_HELP, "es"))
    assert twilio_fake.messages == {}
    fields = twilio_fake.incoming_fields(
        account_sid=TWILIO_SID, sender=phone, to=TWILIO_NUMBER, body="HELP"
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = twilio_post(client, lender_a, "inbound", fields)
    assert (answer.status_code, answer.content) == (200, b"<Response/>")
    [by_sms] = twilio_fake.messages.values()
    assert (by_sms.to, by_sms.body) == (phone, default_text(Kind.REPLY_HELP, "en"))
    assert len(whatsapp_fake.sent) == 1
    # STOP is still an opt-out, never a question
    stop = twilio_fake.incoming_fields(
        account_sid=TWILIO_SID, sender=phone, to=TWILIO_NUMBER, body="STOP"
    )
    twilio_post(client, lender_a, "inbound", stop)
    assert InboundMessage.objects.count() == 2


# --- logs -------------------------------------------------------------------------------


def test_no_phone_number_or_message_text_reaches_the_logs(
    lender_a, sms, client, django_capture_on_commit_callbacks, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    capture = django_capture_on_commit_callbacks
    loan = _late_loan(lender_a)
    phone = loan.customer.phone
    secret_words = "my sister Wanjiku will pay on Friday"
    until = lender_local_date(lender=lender_a) + timedelta(days=4)
    for text in ("BAL", "PAY", f"PROMISE {until.month}/{until.day}", "HELP", secret_words):
        _text(client, lender_a, phone, text, capture=capture)
    _text(client, lender_a, "+254799999002", "Wanjiku here", capture=capture)
    assert len(_answers_to(sms, phone)) == 5
    assert phone not in caplog.text
    assert phone[1:] not in caplog.text
    assert phone[-9:] not in caplog.text
    assert "Wanjiku" not in caplog.text
    assert "/link/" not in caplog.text
    recorded = str(list(AuditEvent.objects.values_list("data", "reason")))
    assert "Wanjiku" not in recorded
    assert phone[-9:] not in recorded


def test_a_text_about_a_written_off_loan_waits_for_an_agent(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    loan = _late_loan(lender_a)
    type(loan).objects.filter(pk=loan.pk).update(status="written_off")
    _text(client, lender_a, loan.customer.phone, "BAL", capture=django_capture_on_commit_callbacks)
    assert _answers_to(sms, loan.customer.phone) == [default_text(Kind.REPLY_RECEIVED, "en")]
    message = InboundMessage.objects.get(loan=loan)
    assert (message.intent, message.needs_agent) == (Intent.BALANCE, True)


# --- reading a text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent", "language", "rest"),
    [
        ("BAL", "balance", "en", ""),
        ("  balance? ", "balance", "en", ""),
        ("ＢＡＬ", "balance", "en", ""),  # noqa: RUF001  (full width, as a Chinese keyboard types)
        ("saldo.", "balance", "es", ""),
        ("余额", "balance", "zh-hans", ""),
        ("余额。", "balance", "zh-hans", ""),
        ("Pay", "pay", "en", ""),
        ("PAGO", "pay", "es", ""),
        ("还款", "pay", "zh-hans", ""),
        ("promise 12/15", "promise", "en", "12/15"),
        ("PROMISE: 12/15.", "promise", "en", "12/15"),
        ("Promise12/15", "promise", "en", "12/15"),
        ("promesa 15/12", "promise", "es", "15/12"),
        ("承诺12月15日", "promise", "zh-hans", "12月15日"),
        ("承诺 １２／１５", "promise", "zh-hans", "12/15"),  # noqa: RUF001
        ("PROMISE", "promise", "en", ""),
        ("help!", "help", "en", ""),
        ("帮助", "help", "zh-hans", ""),
        ("pay me back", "other", "", ""),
        ("balance please", "other", "", ""),
        ("I promised to pay", "other", "", ""),
        ("promised 12/15", "other", "", ""),
        ("", "other", "", ""),
    ],
)
def test_a_text_is_a_keyword_or_it_is_for_an_agent(text, intent, language, rest) -> None:
    asked = reply_intent_read(text)
    assert (asked.intent, asked.language, asked.rest) == (intent, language, rest)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("12/15", "en", date(2026, 12, 15)),
        ("15/12", "es", date(2026, 12, 15)),
        ("12/15", "zh-hans", date(2026, 12, 15)),
        ("12月15日", "zh-hans", date(2026, 12, 15)),
        ("2026年12月15日", "zh-hans", date(2026, 12, 15)),
        ("2026-12-15", "es", date(2026, 12, 15)),
        ("12/15/26", "en", date(2026, 12, 15)),
        ("15.12.2026", "es", date(2026, 12, 15)),
        ("1/3", "en", date(2027, 1, 3)),  # January, next year
        ("12/1", "en", date(2027, 12, 1)),  # past this year: next year's (too far)
        ("12/10", "en", date(2026, 12, 10)),  # today
        ("15/12", "en", None),  # no 15th month
        ("2/30", "en", None),
        ("friday", "en", None),
        ("", "en", None),
        ("12月15日", "en", None),
    ],
)
def test_a_promises_date_is_read_as_its_language_writes_one(text, language, expected) -> None:
    assert promise_date_read(text, language=language, today=date(2026, 12, 10)) == expected


def test_a_promise_recorded_by_an_agent_is_already_open_for_the_customer(
    lender_a, sms, client, django_capture_on_commit_callbacks
) -> None:
    loan = _late_loan(lender_a)
    until = lender_local_date(lender=lender_a) + timedelta(days=6)
    loan_promise_record(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        until=until,
        actor=Actor.system(),
        reason="On the phone.",
        amount=Money(Decimal(100), loan.currency),
    )
    soon = until - timedelta(days=1)
    _text(
        client,
        lender_a,
        loan.customer.phone,
        f"承诺 {soon.month}/{soon.day}",
        capture=django_capture_on_commit_callbacks,
    )
    [answer] = _answers_to(sms, loan.customer.phone)
    assert answer.startswith("无法记录您的还款承诺：您已有一项还款承诺")  # noqa: RUF001
