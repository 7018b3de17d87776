"""The texts a lender sends its customers (apps/lenders/messages.py): SMS segments counted as
carriers do, the check of a text, rendering with the lender's newest version, and the service
that saves one (versioned, audited)."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from apps.audit.models import AuditEvent
from apps.core.money import Money
from apps.lenders.messages import (
    GSM7,
    KINDS,
    LANGUAGES,
    UCS2,
    default_text,
    message_book,
    message_preview,
    message_render,
    message_text_check,
    message_text_errors,
    sms_count,
)
from apps.lenders.models import MessageTemplate
from tests.lenders.factories import LenderFactory, message_text_for

Kind = MessageTemplate.Kind


# --- counting ---------------------------------------------------------------------------


def test_160_gsm7_characters_are_one_segment_and_161_are_two() -> None:
    assert sms_count("a" * 160) == sms_count("a" * 160).__class__(GSM7, 160, 160, 1)
    assert (sms_count("a" * 161).units, sms_count("a" * 161).segments) == (161, 2)
    assert sms_count("a" * 306).segments == 2  # 2 x 153
    assert sms_count("a" * 307).segments == 3


@pytest.mark.parametrize("character", ["€", "[", "]", "{", "}", "~", "^", "|", "\\"])
def test_an_extension_character_counts_two_septets(character: str) -> None:
    count = sms_count("a" * 158 + character)
    assert (count.encoding, count.characters, count.units, count.segments) == (GSM7, 159, 160, 1)
    assert sms_count("a" * 159 + character).segments == 2  # 161 septets


def test_an_extension_character_is_not_split_across_two_segments() -> None:
    # 152 septets, then "€" (two) would end at 154: it starts the second part
    assert sms_count("a" * 152 + "€" + "a" * 152).segments == 3
    assert sms_count("a" * 151 + "€" + "a" * 153).segments == 2


def test_the_gsm7_alphabet_keeps_its_accented_letters_and_greek_capitals() -> None:
    assert sms_count("Café à Genève: ÄÖÑÜ äöñü ¿¡ Δ Ω £¥§").encoding == GSM7


def test_a_chinese_text_counts_ucs2_segments() -> None:
    seventy = "您" * 70
    assert sms_count(seventy) == sms_count(seventy).__class__(UCS2, 70, 70, 1, ("您",))
    assert sms_count("您" * 71).segments == 2
    assert sms_count("您" * 134).segments == 2  # 2 x 67
    assert sms_count("您" * 135).segments == 3
    # the shipped Chinese login code: one part of UCS-2
    text = message_render(
        lender=None, kind=Kind.LOGIN_CODE, language="zh-hans", values={"code": "123456"}
    )
    assert text == "查看手机贷款的验证码：123456。请勿告诉他人。"  # noqa: RUF001  (Chinese punctuation)
    assert (sms_count(text).encoding, sms_count(text).segments) == (UCS2, 1)


def test_one_character_outside_gsm7_makes_the_whole_message_ucs2() -> None:
    count = sms_count("a" * 69 + "í")
    assert (count.encoding, count.units, count.segments, count.outside_gsm7) == (
        UCS2,
        70,
        1,
        ("í",),
    )
    assert sms_count("a" * 70 + "í").segments == 2


def test_an_emoji_takes_two_code_units_and_is_not_split() -> None:
    assert sms_count("😀" * 35).units == 70
    assert sms_count("😀" * 35).segments == 1
    # 66 units, then a pair that would straddle the 67th: the second part starts with it
    assert sms_count("a" * 66 + "😀" + "a" * 66).segments == 3


# --- the check ----------------------------------------------------------------------------


def _codes(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [error.code for error in exc.value.error_list]


@pytest.mark.django_db
def test_an_unknown_placeholder_is_refused_by_name(lender_a) -> None:
    with pytest.raises(ValidationError) as exc:
        message_text_check(
            lender=lender_a,
            kind=Kind.DUE_SOON,
            language="en",
            text="Pay {amount} by {due_date} at {shop_address}.",
        )
    assert _codes(exc) == ["unknown_placeholder"]
    assert "{shop_address}" in exc.value.messages[0]
    assert "{amount}" in exc.value.messages[0]  # and what it may use


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Pay {amount by {due_date}.", "malformed"),
        ("Pay {amount} by due_date}.", "malformed"),
        ("Pay {amount!r}.", "not_a_name"),
        ("Pay {amount:>20}.", "not_a_name"),
        ("Pay {amount.__class__}.", "not_a_name"),
        ("Pay {}.", "not_a_name"),
        ("   ", "empty"),
    ],
)
def test_a_misplaced_brace_or_a_placeholder_that_is_not_a_name_is_refused(
    lender_a, text: str, code: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        message_text_check(lender=lender_a, kind=Kind.DUE_SOON, language="en", text=text)
    assert _codes(exc) == [code]


@pytest.mark.django_db
def test_doubled_braces_are_braces_themselves(lender_a) -> None:
    text = "{{Ref}} {amount} due {due_date}"
    message_text_check(lender=lender_a, kind=Kind.DUE_SOON, language="en", text=text)
    assert message_preview(
        lender=lender_a,
        kind=Kind.DUE_SOON,
        language="en",
        text=text,
        values={"amount": Money(Decimal(5), "KES"), "due_date": date(2026, 12, 24)},
    ).text == ("{Ref} KES 5.00 due 24 December 2026")


@pytest.mark.django_db
def test_a_code_message_without_its_code_is_refused(lender_a) -> None:
    with pytest.raises(ValidationError) as exc:
        message_text_check(
            lender=lender_a, kind=Kind.LOGIN_CODE, language="en", text="Your code is ready."
        )
    assert _codes(exc) == ["placeholder_required"]


@pytest.mark.django_db
def test_a_text_too_long_with_the_longest_values_is_refused(lender_a) -> None:
    # 2 segments allowed for a login code: 306 GSM-7 septets with the longest code (6 digits)
    fits = "Code {code}. " + "x" * (306 - len("Code 999999. "))
    message_text_check(lender=lender_a, kind=Kind.LOGIN_CODE, language="en", text=fits)
    with pytest.raises(ValidationError) as exc:
        message_text_check(lender=lender_a, kind=Kind.LOGIN_CODE, language="en", text=fits + "x")
    assert _codes(exc) == ["too_long_sms"]
    assert "3 segments" in exc.value.messages[0]
    # the same length in a Chinese text is far over: UCS-2 takes 67 a part
    with pytest.raises(ValidationError) as exc:
        message_text_check(
            lender=lender_a, kind=Kind.LOGIN_CODE, language="zh-hans", text="{code}" + "您" * 130
        )
    assert _codes(exc) == ["too_long_sms"]


@pytest.mark.django_db
def test_a_text_over_a_whatsapp_body_is_refused_for_that_channel_too(lender_a) -> None:
    text = "{amount} due {due_date}. " + "Pay at any agent. " * 60  # over 1,024 characters
    errors = message_text_errors(lender=lender_a, kind=Kind.DUE_SOON, language="en", text=text)
    assert [e.code for e in errors] == ["too_long_sms", "too_long_whatsapp"]


@pytest.mark.django_db
def test_the_lenders_own_name_counts_in_the_length(lender_a) -> None:
    # 306 septets (two parts) with a one-letter name and the longest code
    text = "{lender}: your code is {code}. " + "x" * (306 - len("A: your code is 999999. "))
    short = LenderFactory(name="A")
    assert not message_text_errors(lender=short, kind=Kind.LOGIN_CODE, language="en", text=text)
    errors = message_text_errors(lender=lender_a, kind=Kind.LOGIN_CODE, language="en", text=text)
    assert [e.code for e in errors] == ["too_long_sms"]  # "Lender A" is 7 letters longer


@pytest.mark.django_db
def test_a_voice_message_is_held_to_its_characters_not_to_sms_segments(lender_a) -> None:
    text = "{lender} calls: {amount} due {due_date}. " + "Please pay. " * 30
    assert not message_text_errors(lender=lender_a, kind=Kind.VOICE, language="en", text=text)
    errors = message_text_errors(
        lender=lender_a, kind=Kind.VOICE, language="en", text=text + "x" * 200
    )
    assert [e.code for e in errors] == ["too_long_voice"]


@pytest.mark.django_db
@pytest.mark.parametrize("currency", ["KES", "COP", "JPY", "KWD"])
def test_every_shipped_text_passes_the_check_in_every_language(currency: str) -> None:
    lender = LenderFactory(name="Financiera Popular del Sureste", currency=currency)
    for kind in KINDS:
        for language in LANGUAGES:
            text = default_text(kind, language)
            assert text != KINDS[kind].default or language == "en", (kind, language)
            message_text_check(lender=lender, kind=kind, language=language, text=text)


# --- rendering ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_lender_with_no_text_of_its_own_sends_the_shipped_one(lender_a) -> None:
    values = {"amount": Money(Decimal("1234.5"), "MXN"), "due_date": date(2026, 12, 24)}
    assert message_render(lender=lender_a, kind=Kind.DUE_SOON, language="es", values=values) == (
        "Su cuota de MXN 1,234.50 vence el 24 de diciembre de 2026."
    )


@pytest.mark.django_db
def test_a_language_we_do_not_speak_gets_the_english_text(lender_a, make_agent) -> None:
    message_text_for(lender_a, Kind.LOGIN_CODE, "en", "{lender} code: {code}")
    book = message_book(lender_a)
    assert book.render(Kind.LOGIN_CODE, "fr", {"code": "111222"}) == "Lender A code: 111222"
    assert book.render(Kind.LOGIN_CODE, "es-MX", {"code": "111222"}) == (
        "Tu código para ver el crédito de tu teléfono: 111222. No lo compartas."
    )


@pytest.mark.django_db
def test_an_empty_value_leaves_no_space_behind() -> None:
    values = {
        "amount": Money(Decimal(100), "KES"),
        "balance": Money(Decimal(0), "KES"),
        "offline_note": "",
    }
    assert message_render(lender=None, kind=Kind.RECEIPT, language="en", values=values) == (
        "We received KES 100.00. Thank you. Left to pay: KES 0.00."
    )


def test_a_sender_that_leaves_a_placeholder_without_a_value_fails_loudly() -> None:
    with pytest.raises(ValueError, match="due_date"):
        message_book(None).render(Kind.DUE_SOON, "en", {"amount": Money(Decimal(1), "KES")})


# --- saving ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_version_is_used_at_once_and_the_old_one_kept(lender_a, make_agent) -> None:
    admin = make_agent(lender_a)
    values = {"code": "123456"}
    first = message_text_for(lender_a, Kind.LOGIN_CODE, "en", "Code {code}", admin)
    assert message_render(lender=lender_a, kind=Kind.LOGIN_CODE, language="en", values=values) == (
        "Code 123456"
    )
    second = message_text_for(lender_a, Kind.LOGIN_CODE, "en", "{lender}: {code}", admin)
    assert (first.version, second.version) == (1, 2)
    assert message_render(lender=lender_a, kind=Kind.LOGIN_CODE, language="en", values=values) == (
        "Lender A: 123456"
    )
    assert list(
        MessageTemplate.objects.filter(lender=lender_a).values_list("version", "text", "changed_by")
    ) == [(2, "{lender}: {code}", admin.pk), (1, "Code {code}", admin.pk)]
    # another language, another lender: untouched
    assert message_render(lender=lender_a, kind=Kind.LOGIN_CODE, language="es", values=values) == (
        "Tu código para ver el crédito de tu teléfono: 123456. No lo compartas."
    )
    other = LenderFactory()
    assert message_render(lender=other, kind=Kind.LOGIN_CODE, language="en", values=values) == (
        "Your code to see your phone loan: 123456. Do not share it."
    )


@pytest.mark.django_db
def test_each_change_is_audited_with_the_old_and_the_new_text(lender_a, make_agent) -> None:
    admin = make_agent(lender_a)
    saved = message_text_for(
        lender_a, Kind.RECEIPT, "en", "Thanks! {amount} in. {balance} to go. {offline_note}", admin
    )
    event = AuditEvent.objects.get(action="lenders.message_template.changed")
    assert (event.lender_id, event.actor_id, event.target_id) == (
        lender_a.pk,
        str(admin.pk),
        str(saved.pk),
    )
    assert event.data == {
        "kind": "receipt",
        "language": "en",
        "version": 1,
        "old": {"text": "We received {amount}. Thank you. Left to pay: {balance}. {offline_note}"},
        "new": {"text": "Thanks! {amount} in. {balance} to go. {offline_note}"},
    }


@pytest.mark.django_db
def test_saving_the_text_in_force_writes_nothing(lender_a) -> None:
    shipped = default_text(Kind.DUE_TODAY, "es")
    assert message_text_for(lender_a, Kind.DUE_TODAY, "es", f"  {shipped}\n") is None
    assert not MessageTemplate.objects.exists()
    assert not AuditEvent.objects.filter(action="lenders.message_template.changed").exists()


@pytest.mark.django_db
def test_a_refused_text_writes_nothing(lender_a) -> None:
    with pytest.raises(ValidationError):
        message_text_for(lender_a, Kind.DUE_TODAY, "en", "Pay {amount} now {name}")
    assert not MessageTemplate.objects.exists()


@pytest.mark.django_db
def test_an_unknown_kind_or_language_is_refused(lender_a) -> None:
    for kind, language in (("birthday", "en"), (Kind.DUE_TODAY, "fr")):
        with pytest.raises(ValidationError):
            message_text_for(lender_a, kind, language, "Hi")


@pytest.mark.django_db
def test_the_database_refuses_to_change_or_delete_a_version(lender_a) -> None:
    saved = message_text_for(lender_a, Kind.DUE_TODAY, "en", "{amount} today")
    for write in (
        lambda: MessageTemplate.objects.filter(pk=saved.pk).update(text="changed"),
        lambda: MessageTemplate.objects.filter(pk=saved.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
            write()
