"""Voice reminders through Twilio Voice: the lender's ``voice`` text read in the customer's
language, the keys 1, 2 and 9 doing what the menu says, contact hours and weekly limits held,
a call not answered tried once more.

Twilio is a loopback fake speaking its documented Calls API, so Twilio's own client places the
calls; its callbacks (the key pressed, the call's end) are posted to our endpoint signed as
Twilio signs them."""

from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db.models import Q

from apps.audit.models import AuditEvent
from apps.collections.models import InboundMessage, LoanPause
from apps.collections.services import loan_stage_sweep, overdue_notices_queue
from apps.collections.services.voice import VoiceRow, voice_reminders_queue
from apps.core.actor import Actor
from apps.integrations.services import provider_account_save
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification, VoiceCall
from apps.notifications.services import Draft, notifications_queue, voice_calls_dispatch
from tests.collections.factories import signed_loan
from tests.integrations.messaging import TWILIO_NUMBER, TWILIO_SID, TWILIO_TOKEN
from tools.fakes.twilio import signature
from tools.fakes.twilio_voice import FakeTwilioVoice

pytestmark = pytest.mark.django_db

NAIROBI = ZoneInfo("Africa/Nairobi")
SIGNED = datetime(2026, 10, 1, 10, 0, tzinfo=NAIROBI)
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=NAIROBI)  # a Tuesday, inside 07:00-20:00
NIGHT = datetime(2026, 11, 24, 21, 0, tzinfo=NAIROBI)
AGENTS = "+254700000999"
V = VoiceCall.Status


@pytest.fixture
def voice_fake(settings):
    fake = FakeTwilioVoice()
    fake.account(sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    settings.TWILIO_API_BASE = fake.start()
    yield fake
    fake.stop()


def voice_for(lender, *, stages: str = "block_apps,lock", agent_number: str = AGENTS) -> None:
    provider_account_save(
        lender_id=lender.pk,
        provider="twilio_voice",
        enabled=True,
        settings={
            "account_sid": TWILIO_SID,
            "from_number": TWILIO_NUMBER,
            "voice_stages": stages,
            "agent_number": agent_number,
        },
        secrets={"auth_token": TWILIO_TOKEN},
        actor=Actor.system(),
    )


def late_loan(lender, *, locale: str = "en"):
    with time_machine.travel(SIGNED, tick=False):
        loan = signed_loan(lender)
    loan.customer.locale = locale
    loan.customer.save(update_fields=["locale"])
    return loan


def queued(lender, loan, *, stage: str = "block_apps", at: datetime = MORNING) -> int:
    row = VoiceRow(loan.pk, loan.customer_id, stage, False, loan.customer.locale)
    with time_machine.travel(at, tick=False):
        return voice_reminders_queue(
            lender=lender, business_date=lender_local_date(lender=lender), rows=[row]
        )


def placed(fake, lender, loan, *, at: datetime = MORNING):
    """Queue and place the loan's call; the fake's record of it."""
    assert queued(lender, loan, at=at) == 1
    with time_machine.travel(at, tick=False):
        assert voice_calls_dispatch()["placed"] == 1
    return list(fake.calls_placed.values())[-1]


def twilio_signed(client, url: str, fields: dict[str, str], *, token: str = TWILIO_TOKEN):
    return client.post(
        urlsplit(url).path,
        urlencode(fields),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature(token, url, fields),
    )


def press(client, fake, call, digits: str, *, at: datetime = MORNING):
    url, fields = fake.press_fields(call.sid, digits)
    with time_machine.travel(at, tick=False):
        return twilio_signed(client, url, fields)


def end(client, fake, call, status: str, *, at: datetime = MORNING):
    url, fields = fake.end_fields(call.sid, status)
    with time_machine.travel(at, tick=False):
        return twilio_signed(client, url, fields)


@pytest.mark.parametrize(
    ("locale", "opening", "speech"),
    [
        ("en", "Hello, this is Lender A.", "en-US"),
        ("es", "Hola, le habla Lender A.", "es-MX"),
        ("zh-hans", "您好，这里是Lender A。", "zh-CN"),  # noqa: RUF001  (Chinese punctuation)
    ],
)
def test_the_call_reads_the_lenders_voice_text_in_the_customers_language(
    lender_a, voice_fake, locale, opening, speech
) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a, locale=locale)
    call = placed(voice_fake, lender_a, loan)
    script, menu, _goodbye = call.said()
    assert script.startswith(opening)
    assert "1" in menu
    assert "2" in menu
    assert "9" in menu
    assert f'language="{speech}"' in call.twiml
    assert call.to == loan.customer.phone
    assert call.from_ == TWILIO_NUMBER
    row = VoiceCall.objects.get(loan=loan)
    assert (row.status, row.attempts, row.provider_ref) == (V.CALLING, 1, call.sid)


def test_only_the_stages_the_lender_turned_on_get_a_call(lender_a, voice_fake) -> None:
    voice_for(lender_a, stages="lock")
    loan = late_loan(lender_a)
    assert queued(lender_a, loan, stage="block_apps") == 0
    assert queued(lender_a, loan, stage="lock") == 1
    assert queued(lender_a, loan, stage="lock") == 0  # once per loan, stage and day


def test_no_call_without_a_voice_account_in_use(lender_a, voice_fake) -> None:
    assert queued(lender_a, late_loan(lender_a)) == 0


def test_key_1_sends_a_link_to_pay_by_sms_at_once(lender_a, voice_fake, client) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    call = placed(voice_fake, lender_a, loan)
    answer = press(client, voice_fake, call, "1")
    assert answer.status_code == 200
    assert "sending you a link to pay by SMS" in answer.content.decode()
    link = Notification.objects.get(loan=loan, kind=Notification.Kind.REPLY)
    assert "/link/" in link.body
    assert link.first_channel == "sms"
    assert link.scheduled_for <= MORNING  # an answer: at once
    row = VoiceCall.objects.get(loan=loan)
    assert (row.digit, row.answer, row.status) == ("1", "pay_link", V.ANSWERED)
    assert AuditEvent.objects.filter(action="notifications.voice_call.answered").count() == 1
    # Twilio posting the same key again does it once
    assert press(client, voice_fake, call, "1").status_code == 200
    assert Notification.objects.filter(loan=loan, kind=Notification.Kind.REPLY).count() == 1


def test_key_2_records_a_promise_to_pay_within_7_days(lender_a, voice_fake, client) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    call = placed(voice_fake, lender_a, loan)
    answer = press(client, voice_fake, call, "2").content.decode()
    assert "Your promise to pay by" in answer
    promise = LoanPause.objects.get(loan=loan, kind="promise")
    with time_machine.travel(MORNING, tick=False):
        assert promise.ends_on == lender_local_date(lender=lender_a) + timedelta(days=7)
    event = AuditEvent.objects.get(action="collections.pause.opened")
    assert (event.actor_type, event.actor_id) == ("customer", str(loan.customer_id))


def test_key_9_puts_the_customer_through_and_leaves_the_request_for_an_agent(
    lender_a, voice_fake, client
) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    call = placed(voice_fake, lender_a, loan)
    answer = press(client, voice_fake, call, "9").content.decode()
    assert f"<Dial>{AGENTS}</Dial>" in answer
    waiting = InboundMessage.objects.get(loan=loan)
    assert (waiting.channel, waiting.needs_agent, waiting.intent) == ("voice", True, "other")


def test_a_callback_not_signed_by_the_account_is_refused(lender_a, voice_fake, client) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    call = placed(voice_fake, lender_a, loan)
    url, fields = voice_fake.press_fields(call.sid, "2")
    assert twilio_signed(client, url, fields, token="0" * 32).status_code == 403
    assert not LoanPause.objects.filter(loan=loan).exists()
    assert VoiceCall.objects.get(loan=loan).digit == ""


def test_a_call_due_outside_contact_hours_is_held_for_the_next_window(lender_a, voice_fake) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    assert queued(lender_a, loan, at=NIGHT) == 1
    with time_machine.travel(NIGHT + timedelta(minutes=5), tick=False):
        assert voice_calls_dispatch()["placed"] == 0
    assert voice_fake.calls_placed == {}
    row = VoiceCall.objects.get(loan=loan)
    assert row.scheduled_for.astimezone(NAIROBI) == datetime(2026, 11, 25, 7, 0, tzinfo=NAIROBI)
    with time_machine.travel(datetime(2026, 11, 25, 7, 1, tzinfo=NAIROBI), tick=False):
        assert voice_calls_dispatch()["placed"] == 1


def test_a_call_not_answered_is_tried_once_more_then_left(lender_a, voice_fake, client) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    first = placed(voice_fake, lender_a, loan)
    assert end(client, voice_fake, first, "no-answer").status_code == 200
    row = VoiceCall.objects.get(loan=loan)
    assert (row.status, row.attempts) == (V.SCHEDULED, 1)
    assert row.scheduled_for == MORNING + timedelta(hours=1)
    with time_machine.travel(MORNING + timedelta(minutes=30), tick=False):
        assert voice_calls_dispatch()["placed"] == 0  # not yet
    with time_machine.travel(MORNING + timedelta(hours=1), tick=False):
        assert voice_calls_dispatch()["placed"] == 1
    second = list(voice_fake.calls_placed.values())[-1]
    assert second.sid != first.sid
    end(client, voice_fake, second, "busy", at=MORNING + timedelta(hours=1))
    row.refresh_from_db()
    assert (row.status, row.attempts) == (V.UNANSWERED, 2)
    with time_machine.travel(MORNING + timedelta(hours=3), tick=False):
        assert voice_calls_dispatch()["placed"] == 0
    # a late report of the first call changes nothing
    end(client, voice_fake, first, "completed", at=MORNING + timedelta(hours=3))
    row.refresh_from_db()
    assert row.status == V.UNANSWERED


def test_a_call_counts_in_the_weekly_limit_with_the_texts(lender_a, voice_fake) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    drafts = [
        Draft(
            customer_id=loan.customer_id,
            loan_id=loan.pk,
            kind="overdue",
            locale="en",
            body=f"Reminder {n}",
            dedupe_key=f"test:{n}",
        )
        for n in range(7)  # Kenya's weekly limit
    ]
    with time_machine.travel(MORNING - timedelta(days=1), tick=False):
        notifications_queue(lender=lender_a, drafts=drafts)
    assert queued(lender_a, loan) == 1
    assert VoiceCall.objects.get(loan=loan).status == V.SUPPRESSED
    with time_machine.travel(MORNING, tick=False):
        assert voice_calls_dispatch()["placed"] == 0
    # and a call counts against the texts that follow
    other = late_loan(lender_a)
    assert queued(lender_a, other) == 1
    more = [
        Draft(
            customer_id=other.customer_id,
            loan_id=other.pk,
            kind="overdue",
            locale="en",
            body=f"Reminder {n}",
            dedupe_key=f"other:{n}",
        )
        for n in range(7)
    ]
    with time_machine.travel(MORNING, tick=False):
        notifications_queue(lender=lender_a, drafts=more)
    suppressed = Q(loan=other, status=Notification.Status.SUPPRESSED)
    assert Notification.objects.filter(suppressed).count() == 1


@pytest.mark.parametrize(
    ("locale", "menu", "goodbye"),
    [
        ("en", "Press 1 to get a link to pay by SMS.", "Thank you. Goodbye."),
        ("es", "Pulse 1 para recibir por SMS un enlace para pagar.", "Gracias. Hasta luego."),
        ("zh-hans", "按1，通过短信获取付款链接。", "谢谢，再见。"),  # noqa: RUF001  (Chinese punctuation)
    ],
)
def test_the_menu_and_each_answer_are_in_the_customers_language(
    lender_a, voice_fake, client, locale, menu, goodbye
) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a, locale=locale)
    call = placed(voice_fake, lender_a, loan)
    _script, said_menu, said_goodbye = call.said()
    assert said_menu.startswith(menu)
    assert said_goodbye == goodbye
    answer = press(client, voice_fake, call, "7").content.decode()  # no such key
    assert goodbye in answer


def test_a_number_the_provider_refuses_fails_the_call(lender_a, voice_fake) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    voice_fake.refuse(loan.customer.phone, 21211)
    assert queued(lender_a, loan) == 1
    with time_machine.travel(MORNING, tick=False):
        assert voice_calls_dispatch()["failed"] == 1
    row = VoiceCall.objects.get(loan=loan)
    assert (row.status, row.error) == (V.FAILED, "invalid_number")


def test_a_provider_outage_leaves_the_call_for_the_next_run(lender_a, voice_fake) -> None:
    voice_for(lender_a)
    loan = late_loan(lender_a)
    assert queued(lender_a, loan) == 1
    voice_fake.down = True
    with time_machine.travel(MORNING, tick=False):
        assert voice_calls_dispatch()["retry"] == 1
    voice_fake.down = False
    with time_machine.travel(MORNING + timedelta(minutes=1), tick=False):
        assert voice_calls_dispatch()["placed"] == 1
    assert VoiceCall.objects.get(loan=loan).attempts == 1


def test_the_mornings_overdue_notices_call_the_loans_raised_to_a_calling_stage(
    lender_a, voice_fake
) -> None:
    voice_for(lender_a, stages="reminder,wallpaper,alarm,block_apps,lock")
    loan = late_loan(lender_a)
    with time_machine.travel(MORNING, tick=False):
        today = lender_local_date(lender=lender_a)
        loan_stage_sweep(lender_id=lender_a.pk, business_date=today, id_from=0, id_to=10**12)
        overdue_notices_queue(lender_id=lender_a.pk, business_date=today, id_from=0, id_to=10**12)
    loan.refresh_from_db()
    call = VoiceCall.objects.get(loan=loan)
    assert call.stage == loan.stage
    assert call.dedupe_key == f"voice:{loan.pk}:{loan.stage}:{today.isoformat()}"
