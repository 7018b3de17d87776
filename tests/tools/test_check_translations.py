"""The translations check of `make lint`: an untranslated or fuzzy message fails it."""

from pathlib import Path

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


def _project(root: Path, catalogue: str) -> None:
    """A project of one app with its own locale/, as makemessages sees this repository."""
    files = {
        "manage.py": (
            "import sys\nfrom django.core.management import execute_from_command_line\n"
            "execute_from_command_line(sys.argv)\n"
        ),
        "config/__init__.py": "",
        "config/settings/__init__.py": "",
        "config/settings/test.py": (
            "from pathlib import Path\nSECRET_KEY = 'x'\nUSE_I18N = True\nINSTALLED_APPS = []\n"
            "LOCALE_PATHS = [Path(__file__).resolve().parent.parent.parent / 'locale']\n"
        ),
        "apps/shop/views.py": (
            "from django.utils.translation import gettext as _\n\n"
            "def pay():\n    return _('Pay now'), _('Save')\n"
        ),
        "templates/home.html": "{% load i18n %}<p>{% translate 'Welcome back' %}</p>\n",
        "apps/shop/locale/es/LC_MESSAGES/django.po": catalogue,
        "locale/es/LC_MESSAGES/django.po": HEADER,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_a_string_of_the_code_missing_from_its_catalogue_is_named(tmp_path, capsys) -> None:
    _project(tmp_path, HEADER + '\n#: apps/shop/views.py:4\nmsgid "Save"\nmsgstr "Guardar"\n')

    assert main(tmp_path) == 1

    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == [
        'apps/shop/locale/es/LC_MESSAGES/django.po: missing "Pay now" (apps/shop/views.py:4)',
        'locale/es/LC_MESSAGES/django.po: missing "Welcome back" (templates/home.html:1)',
    ]
    # the check looks at a copy: the project's own catalogue is left as it was
    assert "Pay now" not in (tmp_path / "apps/shop/locale/es/LC_MESSAGES/django.po").read_text()


def test_a_project_whose_strings_are_all_in_their_catalogues_passes(tmp_path, capsys) -> None:
    _project(
        tmp_path,
        HEADER + '\nmsgid "Pay now"\nmsgstr "Pagar ahora"\n\nmsgid "Save"\nmsgstr "Guardar"\n',
    )
    (tmp_path / "templates/home.html").write_text("<p>Plain</p>\n", encoding="utf-8")

    assert main(tmp_path) == 0, capsys.readouterr().out
