"""Answers to the texts customers send the lender's number or WhatsApp account.

A text that is one of a few keywords, in one of the product's languages, is answered at once
without an agent: the balance and the next installment (BAL, SALDO, 余额), a link that opens
the customer's page to pay (PAY, PAGAR, 付款), a promise to pay by a date (PROMISE 12/15,
PROMESA 15/12, 承诺 12/15), what can be done by text (HELP, AYUDA, 帮助). A keyword is the
whole text, case, width, spaces and the punctuation around it aside; nothing else is read
into a text. Anything else waits for an agent in the "Messages to answer" work queue, and
the customer is told, once a day, that the team will answer. The answer is in the
keyword's language (a customer who writes SALDO reads Spanish), the customer's own for
anything else, and its words are the lender's texts (``apps.lenders.messages``).

Who is answered: a customer of the lender the text was sent to, found by the number it came
from, and the answer goes back to that number only (on the channel it came on, then the
lender's others). A number that is no customer of the lender gets nothing at all, not even
"we do not know this number": an answer to any number would let whoever can forge a
sender make the lender text strangers (at the lender's cost), and silence says nothing
about who borrows. A customer has answers about one loan, the one a restriction reaches
first (``loan_for_reply``).

A customer gets at most ``REPLIES_PER_DAY`` answers in 24 hours; past that, their texts wait
for an agent unanswered, so a flood of texts (or of forged ones) cannot make the lender
send a flood of messages.

Neither a number nor a text reaches a log or an audit event.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.accounts.models import User
from apps.audit.services import audit_event_record
from apps.collections.errors import (
    InboundNoteRequired,
    NothingOverdue,
    PauseAlreadyOpen,
    PauseTooLong,
)
from apps.collections.events import CollectionsAction
from apps.collections.locks import loan_lock
from apps.collections.models import InboundMessage, Loan
from apps.collections.selectors import (
    LoanOverview,
    NextDue,
    loan_for_reply,
    loan_overview,
    loan_promise_open_until,
)
from apps.collections.services.pauses import loan_promise_record
from apps.core.actor import Actor, ActorType
from apps.core.errors import DomainError
from apps.core.outbox import task_enqueue_on_commit
from apps.customers.models import Customer
from apps.customers.selectors import customer_by_phone
from apps.customers.services import LOGIN_LINK_TTL, customer_login_link_mint
from apps.integrations.messaging.base import InboundText
from apps.integrations.payments.registry import callback_base_url
from apps.lenders.messages import message_book, message_language, promise_refusal_line
from apps.lenders.models import Lender, MessageTemplate
from apps.lenders.selectors import lender_local_date
from apps.notifications.models import Notification
from apps.notifications.services import DISPATCH_TASK, Draft, notifications_queue

logger = logging.getLogger(__name__)

Intent, Kind = InboundMessage.Intent, MessageTemplate.Kind

# the words each language's customers send; a keyword is the whole text (PROMISE: then a date)
KEYWORDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "en": {
        Intent.BALANCE: ("bal", "balance"),
        Intent.PAY: ("pay",),
        Intent.PROMISE: ("promise",),
        Intent.HELP: ("help",),
    },
    "es": {
        Intent.BALANCE: ("saldo",),
        Intent.PAY: ("pagar", "pago"),
        Intent.PROMISE: ("promesa",),
        Intent.HELP: ("ayuda",),
    },
    "zh-hans": {
        Intent.BALANCE: ("余额",),
        Intent.PAY: ("付款", "还款"),
        Intent.PROMISE: ("承诺",),
        Intent.HELP: ("帮助",),
    },
}
# what may surround a keyword: spaces and punctuation (full-width forms are folded first)
_AROUND = " \t\r\n.,;:!?¡¿\"'()[]“”‘’«»。、…-"  # noqa: RUF001  (the quotes people type)
# the languages that write a day before its month (15/12)
DAY_FIRST = frozenset({"es"})
REPLIES_PER_DAY = 10


@dataclass(frozen=True, slots=True)
class Asked:
    """What a text asks: an intent, the language of its keyword ("" for anything else), and
    what follows a promise's keyword (its date, as written)."""

    intent: str
    language: str = ""
    rest: str = ""


def _folded(text: str) -> str:
    """``text`` as keywords are compared: full-width letters, digits and punctuation folded
    to their plain forms (a Chinese keyboard types them), lower case, single spaces, without
    the spaces and punctuation around it."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split()).strip(_AROUND)


def reply_intent_read(text: str) -> Asked:
    """What ``text`` asks. BAL, PAY and HELP (and their other languages' words) must be the
    whole text; PROMISE is followed by its date ("PROMISE 12/15", "承诺12/15"). Anything else,
    "pay me back" or "balance?" and a question, is for an agent."""
    folded = _folded(text)
    for language, intents in KEYWORDS.items():
        for intent, words in intents.items():
            if folded in words:
                return Asked(intent, language, "")
            if intent != Intent.PROMISE:
                continue
            for word in words:
                rest = folded.removeprefix(word)
                if rest == folded or (word.isascii() and rest[:1].isalpha()):
                    continue  # not this word, or a longer one ("promised")
                return Asked(intent, language, rest.strip(_AROUND))
    return Asked(Intent.OTHER)


_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_CHINESE = re.compile(r"^(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号]?$")
_SHORT = re.compile(r"^(\d{1,2})[-/.](\d{1,2})(?:[-/.](\d{4}|\d{2}))?$")


def promise_date_read(text: str, *, language: str, today: date) -> date | None:
    """The date a promise's text names, as its language writes one: month/day in English and
    Chinese (12/15, 12月15日), day/month in Spanish (15/12), a year or not (12/15/26,
    15/12/2026), and 2026-12-15 in all. Without a year, the next such day from ``today``
    (12/01 written on 12/20 is next year's: too far for a promise). None if it is no date."""
    text = text.replace(" ", "")
    year: int | None
    if match := _ISO.match(text):
        year, month, day = (int(part) for part in match.groups())
    elif language == "zh-hans" and (match := _CHINESE.match(text)):
        year = int(match[1]) if match[1] else None
        month, day = int(match[2]), int(match[3])
    elif match := _SHORT.match(text):
        first, second = int(match[1]), int(match[2])
        day, month = (first, second) if language in DAY_FIRST else (second, first)
        year = None
        if match[3]:
            year = int(match[3]) + (2000 if len(match[3]) == 2 else 0)
    else:
        return None
    try:
        if year is not None:
            return date(year, month, day)
        this_year = date(today.year, month, day)
        return this_year if this_year >= today else date(today.year + 1, month, day)
    except ValueError:  # 13/45, or 2/29 of a year that has none
        return None


@dataclass(frozen=True, slots=True)
class _Answer:
    kind: str
    values: Mapping[str, object]
    dedupe_key: str = ""  # "" for one per text


def inbound_texts_answer(*, lender: Lender, texts: Sequence[InboundText]) -> int:
    """Answer or queue for an agent each of ``texts``, sent to ``lender`` (the opt-outs among
    them already applied: ``apps.notifications.services.inbound_texts_apply``), each in its
    own transaction. Returns how many were answered now."""
    answered = 0
    for text in texts:
        message = inbound_text_answer(lender=lender, text=text)
        answered += message is not None and bool(message.answer)
    return answered


@transaction.atomic
def inbound_text_answer(*, lender: Lender, text: InboundText) -> InboundMessage | None:
    """Keep ``text`` and answer it (module docstring): the balance, a pay link, a promise
    recorded through ``loan_promise_record`` with the customer as its actor (or refused,
    with the reason), help; anything else waits for an agent. The answer is queued as a
    transactional ``reply`` for the channel the text came on, and sent at once.

    Idempotent on the provider's id of the text: a callback delivered again finds its row
    (``inbound_message_once``) and answers nothing (None). None also for a text from a
    number that is no customer of the lender, or a customer with no loan there: nothing is
    kept or answered.

    Locks: the loan (a promise). Audit: a promise's ``collections.pause.opened``, a pay
    link's ``customers.login.link_minted``; the row is the text's own record.
    """
    customer = customer_by_phone(lender_id=lender.pk, phone=text.sender)
    loan = (
        loan_for_reply(customer_id=customer.pk, lender_id=lender.pk)
        if customer is not None
        else None
    )
    if customer is None or loan is None or not text.provider_ref:
        logger.info(
            "inbound text not answered: %s lender=%s provider=%s",
            "no customer" if customer is None else "no loan" if loan is None else "no id",
            lender.pk,
            text.provider,
        )
        return None
    asked = reply_intent_read(text.text)
    now = timezone.now()
    message = InboundMessage(
        lender=lender,
        customer=customer,
        loan=loan,
        channel=str(text.channel),
        provider=text.provider,
        provider_ref=text.provider_ref,
        text=text.text,
        received_at=text.at or now,
        intent=asked.intent,
    )
    message.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        kept = InboundMessage.objects.filter(
            lender=lender, provider=text.provider, provider_ref=text.provider_ref
        )
        if not kept.exists():
            raise
        # inbound_message_once: delivered again, it was answered when it came first
        logger.info("inbound text delivered again lender=%s provider=%s", lender.pk, text.provider)
        return None
    answered_today = (
        InboundMessage.objects.filter(customer=customer, created_at__gte=now - timedelta(days=1))
        .exclude(answer="")
        .count()
    )
    if answered_today >= REPLIES_PER_DAY:
        message.needs_agent = True  # read by an agent, answered by none
    else:
        language = asked.language or message_language(customer.locale or lender.locale)
        answer = _answer(message=message, asked=asked, customer=customer, language=language)
        draft = Draft(
            customer_id=customer.pk,
            loan_id=loan.pk,
            kind=Notification.Kind.REPLY,
            locale=language,
            body=message_book(lender).render(answer.kind, language, answer.values),
            dedupe_key=answer.dedupe_key or f"reply:{message.pk}",
            first_channel=str(text.channel),
        )
        if notifications_queue(lender=lender, drafts=[draft]):  # not told twice a day
            message.answer = answer.kind
            task_enqueue_on_commit(DISPATCH_TASK)  # the customer is waiting
    message.save(update_fields=["answer", "refusal", "needs_agent", "updated_at"])
    logger.info(
        "inbound text message=%s lender=%s intent=%s answer=%s",
        message.pk,
        lender.pk,
        message.intent,
        message.answer or "-",
    )
    return message


def _answer(*, message: InboundMessage, asked: Asked, customer: Customer, language: str) -> _Answer:
    """What answers ``message``, once it is done (a promise recorded). Marks the message for
    an agent where no keyword answers it."""
    loan = message.loan
    if asked.intent == Intent.HELP:
        return _Answer(Kind.REPLY_HELP, {})
    if asked.intent == Intent.OTHER or loan.status not in (
        Loan.Status.ACTIVE,
        Loan.Status.PAID_OFF,
    ):
        # an agent answers; the customer is told so once a day, whatever they send
        message.needs_agent = True
        today = lender_local_date(lender=message.lender)
        return _Answer(Kind.REPLY_RECEIVED, {}, f"reply-received:{customer.pk}:{today}")
    if asked.intent == Intent.PROMISE:
        return _promise(message=message, asked=asked, customer=customer, language=language)
    overview = loan_overview(loan=loan)
    next_due = overview.next_due
    if overview.balance.amount <= 0 or next_due is None:
        return _Answer(Kind.REPLY_NOTHING_DUE, {})
    if asked.intent == Intent.PAY:
        return _Answer(
            Kind.REPLY_PAY_LINK,
            {
                "link": customer_pay_link(customer=customer, lender=message.lender),
                "minutes": int(LOGIN_LINK_TTL.total_seconds()) // 60,
            },
        )
    return _balance(overview, next_due)


def _balance(overview: LoanOverview, next_due: NextDue) -> _Answer:
    """BAL: what is left, and what is late (since when) or the next installment."""
    late = next((row for row in overview.schedule if row.status == "overdue"), None)
    if overview.arrears.amount > 0 and late is not None:
        return _Answer(
            Kind.REPLY_BALANCE_LATE,
            {
                "balance": overview.balance,
                "amount": overview.arrears,
                "due_date": late.due_date,
                "days": overview.days_late,
            },
        )
    return _Answer(
        Kind.REPLY_BALANCE,
        {
            "balance": overview.balance,
            "amount": next_due.amount,
            "due_date": next_due.due_date,
        },
    )


def _promise(
    *, message: InboundMessage, asked: Asked, customer: Customer, language: str
) -> _Answer:
    """PROMISE <date>: recorded by the promise service, as if the customer made it on their
    page (its rules, its lock, its audit event), or refused with the rule it breaks."""
    loan, lender = message.loan, message.lender
    today = lender_local_date(lender=lender)
    until = promise_date_read(asked.rest, language=asked.language, today=today)
    with translation.override(language):
        if until is None:
            return _refused(message, "unreadable")
        with translation.override(message_language(lender.locale)):  # the agents' language
            reason = gettext("Promise made by the customer by text (%(channel)s).") % {
                "channel": message.get_channel_display()
            }
        try:
            loan_promise_record(
                loan_id=loan.pk,
                lender_id=lender.pk,
                until=until,
                actor=Actor(type=ActorType.CUSTOMER, id=str(customer.pk)),
                reason=reason,
            )
        except PauseTooLong as exc:
            return _refused(message, "too_far", days=exc.extra.get("max_days", 0))
        except PauseAlreadyOpen:
            return _refused(message, "already_open", until=loan_promise_open_until(loan_id=loan.pk))
        except NothingOverdue:
            return _refused(message, "nothing_late")
        except DomainError:  # a rule with no words for the customer yet: an agent answers
            message.needs_agent = True
            return _Answer(Kind.REPLY_RECEIVED, {})
    late = loan_overview(loan=loan).arrears
    return _Answer(Kind.REPLY_PROMISE, {"amount": late, "promise_date": until})


def _refused(message: InboundMessage, refusal: str, **params: object) -> _Answer:
    """A promise refused: the reason, in the active language (the customer's)."""
    message.refusal = refusal
    reason = promise_refusal_line(refusal, **params)  # type: ignore[arg-type]  # days or until
    return _Answer(Kind.REPLY_NO_PROMISE, {"reason": reason})


def customer_pay_link(*, customer: Customer, lender: Lender) -> str:
    """A link that logs the customer in to their page once, within ``LOGIN_LINK_TTL``
    (``customer_login_link_mint``, audited), at the product's public address."""
    token = customer_login_link_mint(
        customer_id=customer.pk,
        lender_id=lender.pk,
        actor=Actor(type=ActorType.CUSTOMER, id=str(customer.pk)),
    )
    path = reverse("customers:link", kwargs={"lender_slug": lender.slug, "token": token})
    return f"{callback_base_url()}{path}"


_LOGIN_LINK_TOKEN = re.compile(r"(/my/[\w-]+/link/)[^/\s]+/")


def login_links_masked(text: str) -> str:
    """``text`` with the token of each customer login link in it replaced by "…": an answer
    to PAY as the back office shows it, so no agent can log in as the customer with it."""
    return _LOGIN_LINK_TOKEN.sub(r"\1…/", text)


@transaction.atomic
def inbound_messages_handle(
    *, loan_id: int, lender_id: int, message_ids: Sequence[int], user: User, actor: Actor, note: str
) -> int:
    """An agent answered the customer (by phone, by text, in person): the loan's messages
    ``message_ids`` that were waiting for an agent leave the work queue, with what was
    done (``note``, required). Those handled already, or not the loan's, are left as they
    are; returns how many were marked.

    Locks: the loan, then the messages. Emits ``collections.inbound_message.handled`` (the
    messages' ids and intents, never their text) with the note as its reason.
    """
    if not note.strip():
        raise InboundNoteRequired()
    loan = loan_lock(loan_id=loan_id, lender_id=lender_id)
    waiting = list(
        InboundMessage.objects.select_for_update(of=("self",))
        .filter(loan=loan, pk__in=list(message_ids), needs_agent=True, handled_at__isnull=True)
        .order_by("id")
    )
    if not waiting:
        return 0
    now = timezone.now()
    for message in waiting:
        message.handled_at, message.handled_by, message.handled_note = now, user, note.strip()
        message.updated_at = now
    InboundMessage.objects.bulk_update(
        waiting, ["handled_at", "handled_by", "handled_note", "updated_at"]
    )
    audit_event_record(
        actor=actor,
        action=CollectionsAction.INBOUND_MESSAGES_HANDLED,
        target=loan,
        reason=note.strip(),
        data={
            "message_ids": [m.pk for m in waiting],
            "intents": [m.intent for m in waiting],
        },
    )
    return len(waiting)
