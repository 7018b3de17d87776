"""The translations check of `make lint`: an untranslated or fuzzy message fails it."""

from tools.check_translations import catalogues, main, problems

HEADER = 'msgid ""\nmsgstr ""\n"Language: es\\n"\n'


def test_a_translated_catalogue_passes() -> None:
    text = HEADER + '\n#: a.py:1\nmsgid "Save"\nmsgstr "Guardar"\n'
    assert list(problems(text)) == []


def test_an_untranslated_message_is_named_with_its_line() -> None:
    text = HEADER + '\n#: a.py:1\nmsgid ""\n"Save "\n"it"\nmsgstr ""\n'
    assert list(problems(text)) == [(6, "Save it", "untranslated")]


def test_a_fuzzy_message_fails_even_with_a_text() -> None:
    text = HEADER + '\n#, fuzzy\n#| msgid "Sav"\nmsgid "Save"\nmsgstr "Guardar"\n'
    assert [what for _, _, what in problems(text)] == ["fuzzy"]


def test_a_plural_needs_every_form() -> None:
    text = HEADER + (
        '\nmsgid "%(n)s loan"\nmsgid_plural "%(n)s loans"\n'
        'msgstr[0] "%(n)s crédito"\nmsgstr[1] ""\n'
    )
    assert [what for _, _, what in problems(text)] == ["untranslated"]


def test_obsolete_messages_are_not_counted() -> None:
    text = HEADER + '\n#~ msgid "Gone"\n#~ msgstr ""\n'
    assert list(problems(text)) == []


def test_every_catalogue_of_the_repository_is_complete(capsys) -> None:
    assert catalogues()
    assert main() == 0, capsys.readouterr().out
