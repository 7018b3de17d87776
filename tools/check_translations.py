"""``python -m tools.check_translations``: every message of every catalogue (locale/ and
each app's locale/) is translated and none is fuzzy, and every translatable string of the
code is in its catalogue. Prints ``path:line: untranslated "msgid"`` for each message that
is not ready and ``missing "msgid" (source:line)`` for each string makemessages would add,
and exits 1 if any. ``make lint`` runs it, so no English is left on a Spanish or Chinese
page, even for a string added since the catalogues were last extracted.

The missing strings are found by running ``manage.py makemessages`` (the house's own
extraction, which files each string in its app's locale/ or the root one) over a copy of
the project in a temporary folder and comparing its catalogues' msgids with ours; it needs
gettext's xgettext and msgmerge (``tools/ensure_services.sh`` installs them)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Entry:
    line: int  # of its msgid
    msgid: str
    msgstrs: tuple[str, ...]  # msgstr, or msgstr[0], msgstr[1], ...
    fuzzy: bool
    obsolete: bool
    context: str = ""  # its msgctxt
    references: tuple[str, ...] = ()  # the "#:" source:line places that use it


def _unquote(text: str) -> str:
    return ast.literal_eval(text) if text.startswith('"') else ""


def entries(text: str) -> Iterator[Entry]:
    """The catalogue's entries, the header included (its msgid is empty)."""
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        first = text.count("\n", 0, text.find(block)) + 1 if block.strip() else 0
        fuzzy = obsolete = False
        msgid, context, strs, current, line = "", "", [], None, first
        references: list[str] = []
        for number, raw in enumerate(lines, start=first):
            row = raw
            if row.startswith("#~"):
                obsolete, row = True, row[2:].strip()
            elif row.startswith("#,"):
                fuzzy = fuzzy or "fuzzy" in row
                continue
            elif row.startswith("#:"):
                references += row[2:].split()
                continue
            elif row.startswith("#") or not row.strip():
                continue
            if row.startswith("msgctxt "):
                current, context = "ctxt", _unquote(row[8:].strip())
            elif row.startswith("msgid "):
                current, msgid, line = "id", _unquote(row[6:].strip()), number
            elif row.startswith("msgid_plural "):
                current = "plural"
            elif row.startswith("msgstr"):
                strs.append(_unquote(row.split(" ", 1)[1].strip()))
                current = "str"
            elif row.startswith('"') and current == "ctxt":
                context += _unquote(row.strip())
            elif row.startswith('"') and current == "id":
                msgid += _unquote(row.strip())
            elif row.startswith('"') and current == "str":
                strs[-1] += _unquote(row.strip())
        if current is not None:
            yield Entry(line, msgid, tuple(strs), fuzzy, obsolete, context, tuple(references))


def problems(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, msgid, what) for each message not ready: untranslated or fuzzy."""
    for entry in entries(text):
        if entry.obsolete or not entry.msgid:
            continue
        if entry.fuzzy:
            yield entry.line, entry.msgid, "fuzzy"
        elif not all(entry.msgstrs):
            yield entry.line, entry.msgid, "untranslated"


def catalogues(root: Path = ROOT) -> list[Path]:
    found = [*root.glob("locale/*/LC_MESSAGES/django.po")]
    found += root.glob("apps/*/locale/*/LC_MESSAGES/django.po")
    return sorted(found)


def _live(text: str) -> dict[tuple[str, str], Entry]:
    """The catalogue's messages in use, by (msgctxt, msgid), the header left out."""
    return {(e.context, e.msgid): e for e in entries(text) if e.msgid and not e.obsolete}


def _ignore(folder: str, names: list[str]) -> set[str]:
    # what makemessages itself skips (dot folders: .git, .venv, ...), and compiled files
    return {n for n in names if n.startswith(".") or n == "__pycache__" or n.endswith(".mo")}


def missing(root: Path = ROOT) -> Iterator[tuple[Path, Entry]]:
    """(catalogue, entry) for each string of the code that makemessages would add to the
    catalogue: the entry is the extracted one, with the source places that use it."""
    ours = catalogues(root)
    languages = sorted({path.parent.parent.name for path in ours})
    if not languages:
        return
    with tempfile.TemporaryDirectory(prefix="check-translations-") as scratch:
        copy = Path(scratch) / "project"
        shutil.copytree(root, copy, ignore=_ignore, symlinks=True)
        subprocess.run(
            [sys.executable, "manage.py", "makemessages", "--verbosity=0"]
            + [f"--locale={language}" for language in languages],
            cwd=copy,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
            check=True,
        )
        for path in ours:
            known = _live(path.read_text(encoding="utf-8"))
            extracted = _live((copy / path.relative_to(root)).read_text(encoding="utf-8"))
            for key, entry in extracted.items():
                if key not in known:
                    yield path, entry


def main(root: Path = ROOT) -> int:
    failed = 0
    for path in catalogues(root):
        for line, msgid, what in problems(path.read_text(encoding="utf-8")):
            print(f"{path.relative_to(root)}:{line}: {what} {msgid[:70]!r}")
            failed += 1
    for path, entry in missing(root):
        where = " ".join(entry.references) or "?"
        print(f'{path.relative_to(root)}: missing "{entry.msgid[:70]}" ({where})')
        failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
