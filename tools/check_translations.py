"""``python -m tools.check_translations``: every message of every catalogue (locale/ and
each app's locale/) is translated and none is fuzzy; prints ``path:line: untranslated
"msgid"`` for each one that is not and exits 1 if any. ``make lint`` runs it, so no
English is left on a Spanish or Chinese page after makemessages picks up a new string."""

from __future__ import annotations

import ast
import sys
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


def _unquote(text: str) -> str:
    return ast.literal_eval(text) if text.startswith('"') else ""


def entries(text: str) -> Iterator[Entry]:
    """The catalogue's entries, the header included (its msgid is empty)."""
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        first = text.count("\n", 0, text.find(block)) + 1 if block.strip() else 0
        fuzzy = obsolete = False
        msgid, strs, current, line = "", [], None, first
        for number, raw in enumerate(lines, start=first):
            row = raw
            if row.startswith("#~"):
                obsolete, row = True, row[2:].strip()
            elif row.startswith("#,"):
                fuzzy = fuzzy or "fuzzy" in row
                continue
            elif row.startswith("#") or not row.strip():
                continue
            if row.startswith("msgid "):
                current, msgid, line = "id", _unquote(row[6:].strip()), number
            elif row.startswith("msgid_plural "):
                current = "plural"
            elif row.startswith("msgstr"):
                strs.append(_unquote(row.split(" ", 1)[1].strip()))
                current = "str"
            elif row.startswith('"') and current == "id":
                msgid += _unquote(row.strip())
            elif row.startswith('"') and current == "str":
                strs[-1] += _unquote(row.strip())
        if current is not None:
            yield Entry(line, msgid, tuple(strs), fuzzy, obsolete)


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


def main(root: Path = ROOT) -> int:
    failed = 0
    for path in catalogues(root):
        for line, msgid, what in problems(path.read_text(encoding="utf-8")):
            print(f"{path.relative_to(root)}:{line}: {what} {msgid[:70]!r}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
