"""Voice reminders: which late customers get a call, what it reads, and what each key does.

A lender turns calls on per stage of its ladder (its Twilio voice account's stages). When the
morning's sweep raises a loan to one of them, the customer is called (``voice_reminders_queue``,
after the overdue notices) with the lender's ``voice`` text in their language, then a menu:
1 sends a link to pay by SMS (at once: the customer asked for it), 2 records a promise to pay
within ``PROMISE_DAYS`` days through the promise service (its rules and audit), 9 puts the
customer through to the lender's agents (when the account has their number) and leaves the
request in the agents' "Messages to answer" work queue. Placing the calls, contact hours and
weekly limits are ``apps.notifications``'s (``voice_calls_queue``, ``voice_calls_dispatch``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.collections.errors import NothingOverdue, PauseAlreadyOpen, PauseTooLong
from apps.collections.models import InboundMessage, Loan
from apps.collections.selectors import loan_overview, loan_promise_open_until
from apps.collections.services.pauses import loan_promise_record
from apps.collections.services.replies import customer_pay_link
from apps.core.actor import Actor, ActorType
from apps.core.errors import DomainError
from apps.core.outbox import task_enqueue_on_commit
from apps.customers.services import LOGIN_LINK_TTL
from apps.integrations.voice.registry import voice_account_for
from apps.lenders.messages import day_format, message_book, message_language, promise_refusal_line
from apps.lenders.models import Lender, MessageTemplate
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification, VoiceCall
from apps.notifications.selectors import voice_call_for_lender
from apps.notifications.services import (
    DISPATCH_TASK,
    Draft,
    VoiceDraft,
    notifications_queue,
    voice_call_answer_record,
    voice_calls_queue,
)

logger = logging.getLogger(__name__)

PROMISE_DAYS = 7
A = VoiceCall.Answer
KEYS = {"1": A.PAY_LINK, "2": A.PROMISE, "9": A.AGENT}


@dataclass(frozen=True, slots=True)
class VoiceRow:
    """A loan the sweep raised: its id, customer, stage, whether it is paused, and the
    customer's language."""

    loan_id: int
    customer_id: int
    stage: str
    paused: bool
    locale: str


def voice_reminders_queue(*, lender: Lender, business_date: date, rows: list[VoiceRow]) -> int:
    """Queue a reminder call for each loan of ``rows`` raised to a stage the lender calls at
    (none without a voice account in use), not paused and still late, reading the lender's
    ``voice`` text in the customer's language with what is late and since when. One per
    loan, stage and day. Returns how many were queued.

    Audit: none, as ``voice_calls_queue``: each call's row is its record.
    """
    account = voice_account_for(lender_id=lender.pk)
    if account is None or not account.stages:
        return 0
    wanted = [r for r in rows if r.stage in account.stages and not r.paused]
    loans = Loan.objects.select_related("lender").in_bulk([r.loan_id for r in wanted])
    book = message_book(lender)
    drafts = []
    for row in wanted:
        loan = loans.get(row.loan_id)
        if loan is None or loan.status != Loan.Status.ACTIVE:
            continue
        overview = loan_overview(loan=loan)
        late = next((r for r in overview.schedule if r.status == "overdue"), None)
        if late is None or overview.arrears.amount <= 0:
            continue
        script = book.render(
            MessageTemplate.Kind.VOICE,
            row.locale,
            {"amount": overview.arrears, "due_date": late.due_date},
        )
        drafts.append(
            VoiceDraft(
                customer_id=row.customer_id,
                loan_id=row.loan_id,
                stage=row.stage,
                locale=message_language(row.locale),
                script=script,
                dedupe_key=f"voice:{row.loan_id}:{row.stage}:{business_date.isoformat()}",
            )
        )
    return voice_calls_queue(lender=lender, drafts=drafts)


@dataclass(frozen=True, slots=True)
class VoiceReply:
    """What the call says after a key, in the customer's language, and the number it puts
    the customer through to ("" for none)."""

    text: str
    language: str
    dial: str = ""


@transaction.atomic
def voice_key_apply(*, lender: Lender, call_id: int, digit: str) -> VoiceReply | None:
    """Do what the key ``digit`` pressed on call ``call_id`` asks (module docstring), once:
    a key already recorded for the call (the provider posting it again) does nothing more
    and is answered with a goodbye. None for a call that is not the lender's.

    The actions are the customer's own (their actor): a pay link's
    ``customers.login.link_minted``, a promise's ``collections.pause.opened``; the key itself
    ``notifications.voice_call.answered``.
    """
    call = voice_call_for_lender(lender_id=lender.pk, call_id=call_id)
    if call is None:
        return None
    language = call.locale
    actor = Actor(type=ActorType.CUSTOMER, id=str(call.customer_id))
    answer = KEYS.get(digit, A.OTHER)
    recorded = voice_call_answer_record(
        lender_id=lender.pk, call_id=call.pk, digit=digit, answer=answer, actor=actor
    )
    with translation.override(language):
        if recorded is None or answer == A.OTHER:
            return VoiceReply(gettext("Thank you. Goodbye."), language)
        if answer == A.PAY_LINK:
            return _pay_link(call=call, lender=lender, language=language)
        if answer == A.PROMISE:
            return _promise(call=call, lender=lender, language=language, actor=actor)
        return _agent(call=call, lender=lender, language=language)


def _pay_link(*, call: VoiceCall, lender: Lender, language: str) -> VoiceReply:
    """1: a link to the customer's page to pay, by SMS now (an answer the customer asked for:
    transactional, sent at once whatever the hour)."""
    link = customer_pay_link(customer=call.customer, lender=lender)
    body = message_book(lender).render(
        MessageTemplate.Kind.REPLY_PAY_LINK,
        language,
        {"link": link, "minutes": int(LOGIN_LINK_TTL.total_seconds()) // 60},
    )
    draft = Draft(
        customer_id=call.customer_id,
        loan_id=call.loan_id,
        kind=Notification.Kind.REPLY,
        locale=language,
        body=body,
        dedupe_key=f"voice-pay:{call.pk}",
        first_channel=Notification.Channel.SMS,
    )
    notifications_queue(lender=lender, drafts=[draft])
    task_enqueue_on_commit(DISPATCH_TASK)
    return VoiceReply(gettext("We are sending you a link to pay by SMS now. Thank you."), language)


def _promise(*, call: VoiceCall, lender: Lender, language: str, actor: Actor) -> VoiceReply:
    """2: a promise to pay what is late within ``PROMISE_DAYS`` days, by the promise service
    (its rules: one open at a time, only when something is late)."""
    until = lender_local_date(lender=lender) + timedelta(days=PROMISE_DAYS)
    with translation.override(message_language(lender.locale)):  # the agents' language
        reason = gettext("Promise made by the customer on a reminder call (key 2).")
    try:
        with transaction.atomic():
            loan_promise_record(
                loan_id=call.loan_id, lender_id=lender.pk, until=until, actor=actor, reason=reason
            )
    except PauseAlreadyOpen:
        why = promise_refusal_line(
            "already_open", until=loan_promise_open_until(loan_id=call.loan_id)
        )
    except NothingOverdue:
        why = promise_refusal_line("nothing_late")
    except (PauseTooLong, DomainError):
        why = gettext("an agent will call you back.")
    else:
        return VoiceReply(
            gettext("Thank you. Your promise to pay by %(date)s is recorded.")
            % {"date": day_format(until)},
            language,
        )
    return VoiceReply(
        gettext("We could not record your promise: %(reason)s") % {"reason": why}, language
    )


def _agent(*, call: VoiceCall, lender: Lender, language: str) -> VoiceReply:
    """9: the request waits for an agent in the work queue (once per call), and the call is
    put through to the agents' number when the lender gave one."""
    with translation.override(message_language(lender.locale)):
        text = gettext("Asked to talk to an agent during a reminder call.")
    message = InboundMessage(
        lender=lender,
        customer_id=call.customer_id,
        loan_id=call.loan_id,
        channel=InboundMessage.Channel.VOICE,
        provider=call.provider or "twilio_voice",
        provider_ref=f"call:{call.pk}",
        text=text,
        received_at=timezone.now(),
        intent=InboundMessage.Intent.OTHER,
        needs_agent=True,
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:  # inbound_message_once: asked already on this call
        logger.info("agent request repeated call=%s", call.pk)
    account = voice_account_for(lender_id=lender.pk)
    number = account.agent_number if account is not None else ""
    if number:
        return VoiceReply(
            gettext("Please hold: we are putting you through to an agent."), language, number
        )
    return VoiceReply(gettext("Thank you. An agent will call you back soon."), language)
