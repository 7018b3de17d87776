"""``python -m tools.lint [PATH ...]``: the house checks; prints ``path:line: CODE message``
for each violation and exits 1 if there is any. ``--stats`` adds counts per code."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from tools.lint.allowlist import ALLOWLIST, OUT_OF_SCOPE
from tools.lint.checks import CHECKS, RULES
from tools.lint.engine import Project, run

ROOT = Path(__file__).resolve().parents[2]
DIRECTORIES = ("apps", "config")


def main(
    argv: list[str] | None = None,
    *,
    root: Path = ROOT,
    allowlist: dict[str, dict[str, str]] = ALLOWLIST,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lint", description=__doc__)
    parser.add_argument("paths", nargs="*", help="files or directories to report on (default: all)")
    parser.add_argument("--stats", action="store_true", help="count violations per code")
    parser.add_argument("--no-allowlist", action="store_true", help="report allowlisted ones too")
    args = parser.parse_args(argv)

    project = Project.from_root(root, [d for d in DIRECTORIES if (root / d).is_dir()])
    paths = [Path(p).resolve().relative_to(root).as_posix() for p in args.paths] or None
    report = run(
        project,
        CHECKS,
        paths=paths,
        out_of_scope=OUT_OF_SCOPE,
        allowlist={} if args.no_allowlist else allowlist,
    )
    for violation in report.violations:
        print(violation)
    for code, path in report.unused_entries:
        print(f"tools/lint/allowlist.py: {code} {path}: the entry excuses nothing; remove it")
    if args.stats:
        found = Counter(v.code for v in report.violations)
        allowed = Counter(v.code for v in report.allowlisted)
        marked = Counter(v.code for v in report.marked)
        for rule in RULES:
            print(
                f"{rule.code}  {found[rule.code]:4} failing  {allowed[rule.code]:4} allowlisted  "
                f"{marked[rule.code]:4} marked inline  {rule.summary}",
                file=sys.stderr,
            )
    return 1 if report.violations or report.unused_entries else 0


if __name__ == "__main__":
    sys.exit(main())
