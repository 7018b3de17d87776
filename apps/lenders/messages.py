"""The texts the product sends a lender's customers, which the lender's admin may rewrite.

Each kind of message (a reminder, a receipt, a code, ...) has a shipped text in every
language we speak (Django's gettext: ``locale/``), written with named placeholders
(``{amount}``, ``{due_date}``, ``{code}``, ...), and declares which placeholders it may use.
A lender's admin may replace it per kind and language (``MessageTemplate``, one version per
save, the newest in force); ``message_text_check`` refuses a text that names a placeholder
the kind does not know, has a brace out of place, or is too long for its channel with the
longest values it can be given. Every sender renders through ``MessageBook.render``, and the
back office's preview through the same substitution, so the preview is what is sent.

Kept here, in the lenders app, because senders at every layer need it (``customers`` sends
the consent and login codes, ``devices`` the offline codes, ``collections`` the reminders).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from string import Formatter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import formats, timezone, translation
from django.utils.functional import Promise
from django.utils.text import get_text_list
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from apps.core.money import Money, minor_units, money_format
from apps.lenders.models import Lender, MessageTemplate
from apps.lenders.selectors import message_template_texts

logger = logging.getLogger(__name__)

Kind = MessageTemplate.Kind

# --- what happens next, in words to the customer ---------------------------------------

NEXT_STAGE = {
    "reminder": _("you will get payment reminders"),
    "wallpaper": _("a payment reminder will show on the phone's screen"),
    "alarm": _("payment reminder alarms will ring on the phone"),
    "block_apps": _("some apps will be blocked"),
    "lock": _("the phone will lock (emergency calls always work)"),
}


@dataclass(frozen=True, slots=True)
class NextStep:
    stage: str
    on: date


def day_format(on: date) -> str:
    """A date as the active language writes it ("24 December 2026", "24 de diciembre de 2026")."""
    return formats.date_format(on, "DATE_FORMAT", use_l10n=True)


def next_step_line(step: NextStep | None) -> str:
    """ "If it is not paid by <date>, <what happens>.", in the active language; empty when
    nothing follows."""
    if step is None:
        return ""
    return gettext("If it is not paid by %(date)s, %(what)s.") % {
        "date": day_format(step.on),
        "what": NEXT_STAGE[step.stage],
    }


# why a promise to pay made by text is refused, in words to the customer ({reason})
PROMISE_REFUSALS = {
    "unreadable": _("we could not read the date. Write it as month/day, such as PROMISE 12/15."),
    "too_far": _("the date must be between today and %(days)s days from today."),
    "already_open": _("you already have a promise open until %(date)s."),
    "nothing_late": _("nothing on your loan is late, so there is nothing to promise."),
}


def promise_refusal_line(reason: str, *, days: int = 0, until: date | None = None) -> str:
    """Why a promise is refused (a key of ``PROMISE_REFUSALS``), in the active language:
    ``days`` the longest a promise may run, ``until`` the end of the promise already open."""
    return str(PROMISE_REFUSALS[reason]) % {
        "days": days,
        "date": day_format(until) if until else "",
    }


def offline_code_pointer_line() -> str:
    """The line a receipt ends with while the phone has not taken its new state: where the
    unlock code is (its digits are never stored in a message)."""
    return gettext(
        "If your phone is offline, its unlock code comes in a separate SMS and shows on your page."
    )


# --- SMS segments, as carriers count them (3GPP TS 23.038 and 23.040) ------------------

GSM7 = "GSM-7"
UCS2 = "UCS-2"
# The GSM 03.38 default alphabet (its escape code left out: nobody types it) ...
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# ... and its extension table, each character sent as the escape code and itself: two septets
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
SMS_SINGLE = {GSM7: 160, UCS2: 70}  # septets, or UTF-16 code units, in a message of one part
SMS_PART = {GSM7: 153, UCS2: 67}  # in each part of a longer one (the rest is its header)
WHATSAPP_MAX_CHARACTERS = 1024  # the Cloud API's limit on a message body
VOICE_MAX_CHARACTERS = 500  # about 35 seconds read aloud: a call longer loses the listener


@dataclass(frozen=True, slots=True)
class SmsCount:
    encoding: str  # GSM7 or UCS2
    characters: int  # as a person counts them
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    outside_gsm7: tuple[str, ...] = ()  # the characters that make it UCS-2


def sms_count(text: str) -> SmsCount:
    """How many parts an SMS of ``text`` is billed as.

    GSM-7 when every character is in the default alphabet or its extension table (an
    extension character takes two septets): 160 septets in one part, 153 in each part of a
    longer one. Any other character makes the whole message UCS-2: 70 UTF-16 code units in
    one part, 67 in each part (a character outside the Basic Multilingual Plane takes two).
    A character is never split across two parts: an escape pair or a surrogate pair that
    would straddle a boundary starts the next part, as phones and carriers do.
    """
    outside = tuple(dict.fromkeys(c for c in text if c not in GSM7_BASIC | GSM7_EXTENSION))
    if outside:
        encoding, sizes = UCS2, [2 if ord(c) > 0xFFFF else 1 for c in text]
    else:
        encoding, sizes = GSM7, [2 if c in GSM7_EXTENSION else 1 for c in text]
    units = sum(sizes)
    segments = 1
    if units > SMS_SINGLE[encoding]:
        used = 0
        for size in sizes:
            if used + size > SMS_PART[encoding]:
                segments, used = segments + 1, 0
            used += size
    return SmsCount(encoding, len(text), units, segments, outside)


# --- kinds, placeholders and their values ----------------------------------------------

SMS, VOICE = "sms", "voice"

PLACEHOLDERS: dict[str, Promise] = {
    "lender": _("the lender's name"),
    "amount": _("the amount due or paid, with its currency"),
    "balance": _("what is left to pay, with its currency"),
    "due_date": _("the installment's due date"),
    "days": _("how many days the installment is late"),
    "next_step": _(
        "what happens next and when, as a sentence (empty when nothing more will happen)"
    ),
    "action": _("what will happen to the phone (some apps blocked, or the lock)"),
    "action_date": _("the date it will happen if nothing is paid"),
    "reference": _("the payment provider's receipt number"),
    "offline_note": _(
        "while the phone has not taken the payment: where its unlock code comes (else empty)"
    ),
    "code": _("the code"),
    "link": _("a link that opens the customer's page to pay, once, for a few minutes"),
    "minutes": _("how many minutes the link works"),
    "promise_date": _("the date the customer promised to pay by"),
    "reason": _("why the promise cannot be recorded, as a sentence"),
}


@dataclass(frozen=True, slots=True)
class KindSpec:
    default: str  # the shipped text in English, a msgid of locale/
    placeholders: tuple[str, ...]
    required: tuple[str, ...] = ()
    channel: str = SMS  # SMS: sent by SMS or WhatsApp; VOICE: read by a voice call
    max_segments: int = 3  # SMS parts with the longest values (docs/messages.md says why)

    @property
    def allowed(self) -> tuple[str, ...]:
        return ("lender", *self.placeholders)


KINDS: dict[str, KindSpec] = {
    Kind.DUE_SOON: KindSpec(
        gettext_noop("Your installment of {amount} is due on {due_date}."),
        ("amount", "due_date"),
    ),
    Kind.DUE_TODAY: KindSpec(
        gettext_noop("Your installment of {amount} is due today."), ("amount", "due_date")
    ),
    # a "due today" reminder held past its due date by a rest day or a holiday
    Kind.DUE_PAST: KindSpec(
        gettext_noop("Your installment of {amount} was due on {due_date}."),
        ("amount", "due_date"),
    ),
    Kind.OVERDUE: KindSpec(
        gettext_noop("Your installment is {days} days late. {next_step}"),
        ("days", "next_step"),
        # it may be the notice a block or a lock waits for: it names the stage and the date
        required=("next_step",),
    ),
    Kind.LOCK_NOTICE: KindSpec(
        gettext_noop(
            "Your installment is {days} days late. If it is not paid by {action_date}, {action}."
        ),
        ("days", "action", "action_date"),
        required=("action", "action_date"),
    ),
    Kind.RECEIPT: KindSpec(
        gettext_noop("We received {amount}. Thank you. Left to pay: {balance}. {offline_note}"),
        ("amount", "balance", "offline_note"),
    ),
    Kind.RECEIPT_REF: KindSpec(
        gettext_noop(
            "We received {amount}, receipt {reference}. Thank you. Left to pay: {balance}. "
            "{offline_note}"
        ),
        ("amount", "reference", "balance", "offline_note"),
    ),
    Kind.CONSENT_CODE: KindSpec(
        gettext_noop(
            "Your code to accept the phone financing terms: {code}. Give it to the shop clerk only."
        ),
        ("code",),
        required=("code",),
        max_segments=2,
    ),
    Kind.LOGIN_CODE: KindSpec(
        gettext_noop("Your code to see your phone loan: {code}. Do not share it."),
        ("code",),
        required=("code",),
        max_segments=2,
    ),
    Kind.OFFLINE_UNLOCK: KindSpec(
        gettext_noop(
            "Payment received. If your phone is offline, type this code on its lock screen to "
            "unlock it: {code}"
        ),
        ("code",),
        required=("code",),
        max_segments=2,
    ),
    Kind.OFFLINE_RELEASE: KindSpec(
        gettext_noop(
            "Your loan is paid off. If your phone is offline, type this code on its lock screen "
            "to release it: {code}"
        ),
        ("code",),
        required=("code",),
        max_segments=2,
    ),
    Kind.VOICE: KindSpec(
        gettext_noop(
            "Hello, this is {lender}. Your installment of {amount} is due on {due_date}. Thank you."
        ),
        ("amount", "due_date"),
        channel=VOICE,
    ),
    # answers to a customer's text (docs/customers.md, "Answers by text"): the keywords they
    # name are the ones the answers understand, in the text's language
    Kind.REPLY_BALANCE: KindSpec(
        gettext_noop(
            "Left to pay: {balance}. Next installment: {amount}, due on {due_date}. "
            "Reply PAY to pay."
        ),
        ("balance", "amount", "due_date"),
    ),
    Kind.REPLY_BALANCE_LATE: KindSpec(
        gettext_noop(
            "Left to pay: {balance}. Late now: {amount}, due on {due_date} ({days} days ago). "
            "Reply PAY to pay."
        ),
        ("balance", "amount", "due_date", "days"),
    ),
    Kind.REPLY_NOTHING_DUE: KindSpec(
        gettext_noop("Nothing is left to pay on your loan. Thank you."), ()
    ),
    Kind.REPLY_PAY_LINK: KindSpec(
        gettext_noop(
            "To pay, open {link} (it works once, for {minutes} minutes; reply PAY for a new one)."
        ),
        ("link", "minutes"),
        required=("link",),
        # the link alone is about 200 characters: four parts of UCS-2 with a Chinese text
        max_segments=4,
    ),
    Kind.REPLY_PROMISE: KindSpec(
        gettext_noop("Thank you. Your promise to pay {amount} by {promise_date} is recorded."),
        ("amount", "promise_date"),
    ),
    Kind.REPLY_NO_PROMISE: KindSpec(
        gettext_noop("We could not record your promise: {reason} Reply HELP for help."),
        ("reason",),
        required=("reason",),
    ),
    Kind.REPLY_HELP: KindSpec(
        gettext_noop(
            "Reply BAL for your balance, PAY for a link to pay, or PROMISE and a date "
            "(PROMISE 12/15) to promise to pay by then. Anything else, our team answers."
        ),
        (),
    ),
    Kind.REPLY_RECEIVED: KindSpec(
        gettext_noop(
            "Thank you, we received your message. Our team will answer you soon. "
            "Reply HELP for what you can do by text."
        ),
        (),
    ),
    # sent when the customer's account-information provider says money arrived
    Kind.FUNDS_PAY_LINK: KindSpec(
        gettext_noop(
            "{amount} is due on your phone loan. To pay it now, open {link} (it works once, "
            "for {minutes} minutes; reply PAY for a new one)."
        ),
        ("amount", "link", "minutes"),
        required=("link",),
        # the link alone is about 200 characters, and an amount as Spanish writes it (a
        # no-break space) makes the message UCS-2: five parts with the longest values
        max_segments=5,
    ),
}

LANGUAGES: tuple[str, ...] = tuple(code for code, _name in settings.LANGUAGES)
_CODE_KINDS = frozenset({Kind.CONSENT_CODE, Kind.LOGIN_CODE})


def message_language(language: str) -> str:
    """The language we have texts in for ``language`` ("es-mx" -> "es"); English else."""
    try:
        supported = translation.get_supported_language_variant(language.lower())
    except LookupError:
        return "en"
    return supported if supported in LANGUAGES else "en"


def default_text(kind: str, language: str) -> str:
    """The shipped text of ``kind`` in ``language`` (English where it has no translation)."""
    with translation.override(message_language(language)):
        return gettext(KINDS[kind].default)


# A customer's one-time login link (``customers:link``): the product's address, the lender's
# slug and a signed token of about 114 characters. The longest: a 40-character address and
# a 30-character slug.
SAMPLE_LINK = (
    "https://pay.example.com/my/lender/link/eyJjIjo0MjEsImwiOjEsIm4iOiJNbFoyemZEX2d0amdLR0M2"
    "In0:1xa785:ISiE6AP7R2ffPP9dhqQ0-0eXKWXmUA0R5dzr1bjLSic/"
)
LONGEST_LINK = f"https://{'c' * 32}/my/{'s' * 30}/link/{'t' * 120}/"


def _longest(texts: list[str]) -> str:
    return max(texts, key=lambda text: (sms_count(text).units, len(text)))


def sample_values(*, kind: str, language: str, currency: str, longest: bool) -> dict[str, object]:
    """Values for every placeholder of ``kind`` but the lender's name: typical ones for the
    preview, or the longest a customer can realistically be sent (the length check's)."""
    today = timezone.localdate()
    with translation.override(message_language(language)):
        if longest:
            widest = Decimal(10**10 - 1).scaleb(-minor_units(currency))
            # the widest written date of the year, a two-digit day
            on = max(
                (date(today.year, month, 28) for month in range(1, 13)),
                key=lambda d: sms_count(day_format(d)).units,
            )
            lines = [next_step_line(NextStep(stage, on)) for stage in NEXT_STAGE]
            values: dict[str, object] = {
                # ten digits, as wide in every currency ("KES 99,999,999.99", "JPY
                # 9,999,999,999", "KWD 9,999,999.999"): more than a phone loan ever owes
                "amount": Money(widest, currency),
                "balance": Money(widest, currency),
                "due_date": on,
                "days": 999,
                "next_step": _longest(lines),
                "action": _longest([str(NEXT_STAGE["block_apps"]), str(NEXT_STAGE["lock"])]),
                "action_date": on,
                # M-Pesa's receipt numbers have 10 characters; an agent's manual entry, a few more
                "reference": "SBK4H7XQ2M-01",
                "offline_note": offline_code_pointer_line(),
                "code": "999999" if kind in _CODE_KINDS else "999 999 999",
                "link": LONGEST_LINK,
                "minutes": 99,
                "promise_date": on,
                "reason": _longest(
                    [promise_refusal_line(r, days=999, until=on) for r in PROMISE_REFUSALS]
                ),
            }
        else:
            due = today + timedelta(days=3)
            values = {
                "amount": Money(Decimal("1250"), currency),
                "balance": Money(Decimal("8750"), currency),
                "due_date": due,
                "days": 12,
                "next_step": next_step_line(NextStep("block_apps", due + timedelta(days=9))),
                "action": str(NEXT_STAGE["lock"]),
                "action_date": due + timedelta(days=9),
                "reference": "SBK4H7XQ2M",
                "offline_note": offline_code_pointer_line(),
                "code": "482913" if kind in _CODE_KINDS else "482 913 570",
                "link": SAMPLE_LINK,
                "minutes": 5,
                "promise_date": today + timedelta(days=7),
                "reason": promise_refusal_line("too_far", days=14),
            }
    return {name: values[name] for name in KINDS[kind].placeholders}


# --- parsing, checking and rendering ---------------------------------------------------

_NAME = re.compile(r"^[a-z_]+$")
_SPACES = re.compile(r"[ \t]{2,}")
_LINE_ENDS = re.compile(r"[ \t]+\n|\n[ \t]+")


def _parts(text: str) -> list[tuple[str, str | None]]:
    """``text`` as (literal, placeholder or None) pairs, a placeholder as written between its
    braces; ``{{`` and ``}}`` are braces themselves. Raises ValueError for a brace out of
    place."""
    parts = []
    for literal, name, spec, conversion in Formatter().parse(text):
        if name is not None:
            # "{amount!r}", "{amount:>9}": kept whole, so that the check refuses them
            name += (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        parts.append((literal, name))
    return parts


def _format(value: object) -> str:
    """A value as the active language writes it: money with its currency, a date."""
    if isinstance(value, Money):
        return money_format(value.amount, value.currency)
    if isinstance(value, date):
        return day_format(value)
    return str(value)


def _written(lender_name: str, values: Mapping[str, object]) -> dict[str, str]:
    """Each placeholder's text in the active language, the lender's name among them."""
    return {"lender": lender_name, **{name: _format(v) for name, v in values.items()}}


def _substitute(text: str, values: Mapping[str, str], *, keep_unknown: bool = False) -> str:
    """Put each value in its placeholder; an empty value leaves no doubled space behind and
    the text no space at either end. ``keep_unknown`` leaves a placeholder with no value as
    written (the preview of a text still being typed); without it, it raises KeyError."""
    out = []
    for literal, name in _parts(text):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, f"{{{name}}}") if keep_unknown else values[name])
    return _LINE_ENDS.sub("\n", _SPACES.sub(" ", "".join(out))).strip()


@dataclass(frozen=True, slots=True)
class MessageBook:
    """A lender's texts in force, read once: what a sender renders many messages from."""

    lender_name: str = ""
    texts: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def text(self, kind: str, language: str) -> str:
        """The lender's newest text of ``kind`` in ``language``, else the shipped one; a
        language we have no texts in is sent English."""
        language = message_language(language)
        return self.texts.get((kind, language)) or default_text(kind, language)

    def render(self, kind: str, language: str, values: Mapping[str, object]) -> str:
        """The message of ``kind`` for a customer who reads ``language``, with ``values`` for
        each placeholder of the kind (money, dates and numbers written as that language does).
        A stored text that no longer renders (a placeholder a later release took away) is
        replaced by the shipped text, with a warning naming the kind only."""
        spec = KINDS[kind]
        missing = set(spec.placeholders) - set(values)
        if missing:
            raise ValueError(f"a {kind} message needs {sorted(missing)}")
        language = message_language(language)
        with translation.override(language):
            written = _written(self.lender_name, values)
            try:
                return _substitute(self.text(kind, language), written)
            except (KeyError, ValueError):
                logger.warning("message text unusable, shipped text sent: kind=%s", kind)
                return _substitute(default_text(kind, language), written)


def message_book(lender: Lender | None) -> MessageBook:
    """``lender``'s texts in force (one query); None: the shipped texts only."""
    if lender is None:
        return MessageBook()
    return MessageBook(lender.name, message_template_texts(lender_id=lender.pk))


def message_render(
    *, lender: Lender | None, kind: str, language: str, values: Mapping[str, object]
) -> str:
    """One message of ``kind`` (``MessageBook.render``); a sender of many reads the lender's
    texts once with ``message_book``."""
    return message_book(lender).render(kind, language, values)


def _placeholder_errors(kind: str, text: str) -> list[ValidationError]:
    spec = KINDS[kind]
    try:
        names = [name for _literal, name in _parts(text) if name is not None]
    except ValueError:
        return [
            ValidationError(
                _(
                    "A brace is not closed or not opened. A placeholder is a name in braces, "
                    "such as {amount}; write {{ and }} for a brace itself."
                ),
                code="malformed",
            )
        ]
    errors = []
    allowed = get_text_list([f"{{{name}}}" for name in spec.allowed], _("and"))
    for name in dict.fromkeys(names):
        if not _NAME.match(name):
            errors.append(
                ValidationError(
                    _(
                        "“{%(name)s}” is not a placeholder: a placeholder is a plain name in braces."
                    ),
                    code="not_a_name",
                    params={"name": name},
                )
            )
        elif name not in spec.allowed:
            errors.append(
                ValidationError(
                    _("Unknown placeholder {%(name)s}: this message can use %(allowed)s."),
                    code="unknown_placeholder",
                    params={"name": name, "allowed": allowed},
                )
            )
    errors.extend(
        ValidationError(
            _("This message must contain {%(name)s}."),
            code="placeholder_required",
            params={"name": name},
        )
        for name in spec.required
        if name not in names
    )
    return errors


def _length_errors(rendered: str, spec: KindSpec) -> list[ValidationError]:
    if spec.channel == VOICE:
        if len(rendered) <= VOICE_MAX_CHARACTERS:
            return []
        return [
            ValidationError(
                _(
                    "With the longest values it can be given, this call reads %(count)s "
                    "characters; a voice message may read at most %(limit)s."
                ),
                code="too_long_voice",
                params={"count": len(rendered), "limit": VOICE_MAX_CHARACTERS},
            )
        ]
    errors = []
    count = sms_count(rendered)
    if count.segments > spec.max_segments:
        errors.append(
            ValidationError(
                _(
                    "With the longest values it can be given, this SMS takes %(segments)s "
                    "segments (%(encoding)s, %(units)s units); this message may take at most "
                    "%(limit)s."
                ),
                code="too_long_sms",
                params={
                    "segments": count.segments,
                    "encoding": count.encoding,
                    "units": count.units,
                    "limit": spec.max_segments,
                },
            )
        )
    if len(rendered) > WHATSAPP_MAX_CHARACTERS:
        errors.append(
            ValidationError(
                _(
                    "With the longest values it can be given, this message has %(count)s "
                    "characters; WhatsApp takes at most %(limit)s."
                ),
                code="too_long_whatsapp",
                params={"count": len(rendered), "limit": WHATSAPP_MAX_CHARACTERS},
            )
        )
    return errors


def _render_longest(*, lender: Lender, kind: str, language: str, text: str) -> str:
    """``text`` with the longest values ``kind`` can be given (``sample_values``)."""
    values = sample_values(kind=kind, language=language, currency=lender.currency, longest=True)
    with translation.override(message_language(language)):
        return _substitute(text, _written(lender.name, values))


def message_text_errors(
    *, lender: Lender, kind: str, language: str, text: str
) -> list[ValidationError]:
    """Why ``text`` cannot be ``lender``'s message of ``kind`` in ``language`` (empty: it can).

    Its placeholders must be those the kind declares, written as plain names in braces, with
    those it requires; rendered with the longest realistic values (the lender's own name, the
    largest amount in its currency, the widest date of the language), it must fit the kind's
    SMS segments and a WhatsApp body, or a voice call's length."""
    if not text.strip():
        return [ValidationError(_("Write the message."), code="empty")]
    errors = _placeholder_errors(kind, text)
    if errors:
        return errors
    longest = _render_longest(lender=lender, kind=kind, language=language, text=text)
    return _length_errors(longest, KINDS[kind])


def message_text_check(*, lender: Lender, kind: str, language: str, text: str) -> None:
    """``message_text_errors``, raised as one ValidationError."""
    errors = message_text_errors(lender=lender, kind=kind, language=language, text=text)
    if errors:
        raise ValidationError(errors)


@dataclass(frozen=True, slots=True)
class MessagePreview:
    text: str  # rendered with the values given, or typical ones
    count: SmsCount  # of that text
    longest: SmsCount | None  # with the longest values (None while a placeholder is wrong)
    max_segments: int
    channel: str
    errors: list[str]


_LENGTH_CODES = frozenset({"too_long_sms", "too_long_whatsapp", "too_long_voice"})


def message_preview(
    *,
    lender: Lender,
    kind: str,
    language: str,
    text: str,
    values: Mapping[str, object] | None = None,
) -> MessagePreview:
    """What ``text`` would send as ``lender``'s message of ``kind`` in ``language``: rendered
    by the same substitution as every send, with ``values`` or typical ones, and what the
    check says of it. A placeholder the kind does not know stays as written."""
    language = message_language(language)
    if values is None:
        values = sample_values(
            kind=kind, language=language, currency=lender.currency, longest=False
        )
    errors = message_text_errors(lender=lender, kind=kind, language=language, text=text)
    # the errors in the reader's language (the admin's), the message in its own
    messages = [str(error.message) % (error.params or {}) for error in errors]
    with translation.override(language):
        written = _written(lender.name, values)
    try:
        rendered = _substitute(text, written, keep_unknown=True)
    except ValueError:  # a brace out of place: shown as typed
        rendered = text.strip()
    longest = None
    if all(error.code in _LENGTH_CODES for error in errors):
        longest = sms_count(_render_longest(lender=lender, kind=kind, language=language, text=text))
    spec = KINDS[kind]
    return MessagePreview(
        rendered, sms_count(rendered), longest, spec.max_segments, spec.channel, messages
    )
