"""The machinery every house check shares: parsed modules, the project's indexes, violations.

A ``Module`` is one parsed file with its comments and imports; a ``Project`` is every
module the checks may look across (the lender-owned models, the services' call graph).
A check is a function ``(module, project) -> Iterable[Violation]``; ``run`` applies the
checks, then the inline markers and the allowlist (tools/lint/allowlist.py).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar, cast

#: ``# lint: allow SC101 <reason>`` on the line of a violation excuses that one line.
ALLOW_MARKER = re.compile(
    r"lint:\s*allow\s+(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*)(?P<reason>.*)"
)


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.code} {self.message}"


@dataclass(frozen=True)
class Sample:
    """A sample for a rule's own test: ``source`` as the file at ``path``, next to ``context``
    (other files of a small project: models, services) that the check may need to see."""

    path: str
    source: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Rule:
    """One code a check reports, what it means, and samples that prove the check finds it
    (``bad``: each reports this code) and leaves the right thing alone (``good``: none do)."""

    code: str
    summary: str
    good: tuple[Sample, ...]
    bad: tuple[Sample, ...]


T = TypeVar("T")
Check = Callable[["Module", "Project"], Iterable[Violation]]


def dotted_name(path: str) -> str:
    """``apps/collections/services/lending.py`` -> ``apps.collections.services.lending``."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class Module:
    """One Python file: its tree, its comments by line, its imports and where it sits."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.source = source
        self.tree = ast.parse(source, filename=path)
        self.dotted = dotted_name(path)
        parts = path.split("/")
        self.parts = parts
        self.app = parts[1] if len(parts) > 2 and parts[0] == "apps" else None

    # --- where the module sits ------------------------------------------------
    def is_in(self, *names: str) -> bool:
        """Whether the module is ``apps/<app>/<name>.py`` or in the package
        ``apps/<app>/<name>/`` for one of ``names`` (``"services"``, ``"selectors"``, ...)."""
        rest = self.parts[2:] if self.app else []
        return bool(rest) and any(
            rest[0] == f"{name}.py" or (rest[0] == name and len(rest) > 1) for name in names
        )

    @property
    def is_views(self) -> bool:
        """Views and APIs: ``views.py``, a ``views/`` package, anything in an ``api/`` package."""
        directories, filename = self.parts[:-1], self.parts[-1]
        return filename == "views.py" or "views" in directories or "api" in directories

    # --- what the file says ---------------------------------------------------
    @cached_property
    def comments(self) -> dict[int, str]:
        """The text of each comment (without ``#``) by line."""
        found: dict[int, str] = {}
        for token in tokenize.generate_tokens(io.StringIO(self.source).readline):
            if token.type == tokenize.COMMENT:
                found[token.start[0]] = token.string.lstrip("#").strip()
        return found

    @cached_property
    def imports(self) -> dict[str, str]:
        """Each imported local name -> the dotted name it stands for
        (``from apps.collections.models import Loan`` gives ``Loan -> apps.collections.models.Loan``)."""
        names: dict[str, str] = {}
        package = (
            self.dotted if self.path.endswith("__init__.py") else self.dotted.rpartition(".")[0]
        )
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        names[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    names[alias.asname or alias.name] = f"{base}.{alias.name}"
        return names

    @cached_property
    def parents(self) -> dict[ast.AST, ast.AST]:
        found: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                found[child] = node
        return found

    @cached_property
    def functions(self) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
        """The module's top-level functions by name."""
        return {
            node.name: node
            for node in self.tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }

    @cached_property
    def constants(self) -> dict[str, ast.expr]:
        """The module's top-level assignments by name (``NAME = <expr>``)."""
        found: dict[str, ast.expr] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value
            elif (
                isinstance(node, ast.AnnAssign)
                and node.value is not None
                and isinstance(node.target, ast.Name)
            ):
                found[node.target.id] = node.value
        return found

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parents:
            node = self.parents[node]
            yield node

    def resolve(self, node: ast.expr) -> str | None:
        """The dotted name an expression stands for through the imports, if it is a name
        or an attribute of one (``models.Loan`` -> ``apps.collections.models.Loan``)."""
        if isinstance(node, ast.Name):
            if node.id in self.imports:
                return self.imports[node.id]
            return f"{self.dotted}.{node.id}"
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def violation(self, node: ast.AST | int, code: str, message: str) -> Violation:
        line = node if isinstance(node, int) else getattr(node, "lineno", 1)
        return Violation(self.path, line, code, message)


class Project:
    """Every module the checks may look across, by path and by dotted name."""

    def __init__(self, modules: Iterable[Module]) -> None:
        self.modules = {module.path: module for module in modules}
        self.by_dotted = {module.dotted: module for module in self.modules.values()}
        self.cache: dict[str, object] = {}  # indexes the checks build once per project

    @classmethod
    def from_sources(cls, sources: dict[str, str]) -> Project:
        return cls(Module(path, source) for path, source in sources.items())

    @classmethod
    def from_root(cls, root: Path, directories: Iterable[str]) -> Project:
        modules = []
        for directory in directories:
            for file in sorted((root / directory).rglob("*.py")):
                path = file.relative_to(root).as_posix()
                if "/migrations/" not in path:
                    modules.append(Module(path, file.read_text(encoding="utf-8")))
        return cls(modules)

    def index(self, build: Callable[[Project], T]) -> T:
        """What ``build`` makes of the project, made once."""
        key = f"{build.__module__}.{build.__qualname__}"
        if key not in self.cache:
            self.cache[key] = build(self)
        return cast(T, self.cache[key])


# --- shared helpers for checks --------------------------------------------------


def call_name(call: ast.Call) -> str | None:
    """The last name of what is called: ``save`` for ``loan.save()``, ``float`` for ``float(x)``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def calls(node: ast.AST) -> Iterator[ast.Call]:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            yield child


def is_model_write(call: ast.Call) -> str | None:
    """What an ORM write looks like in a call, or None: ``.save()``, ``.delete()`` and
    ``.create(...)`` with no positional argument (an image's ``save(buffer)`` or a cache's
    ``delete(key)`` take one), ``.update(...)`` with keywords only (a dict's takes a mapping),
    and the bulk and get-or-create forms."""
    name = call_name(call)
    if not isinstance(call.func, ast.Attribute) or name is None:
        return None
    if name in {"bulk_create", "bulk_update", "get_or_create", "update_or_create"}:
        return f".{name}()"
    if name in {"save", "delete", "create"} and not call.args:
        return f".{name}()"
    if name == "update" and not call.args and call.keywords:
        return ".update()"
    return None


# --- inline markers and the allowlist --------------------------------------------


def inline_allowed(module: Module, violation: Violation) -> bool:
    marker = ALLOW_MARKER.search(module.comments.get(violation.line, ""))
    if marker is None:
        return False
    codes = {code.strip() for code in marker["codes"].split(",")}
    return violation.code in codes and bool(marker["reason"].strip())


def marker_problems(module: Module) -> Iterator[Violation]:
    """SC001: an inline ``lint: allow`` marker must name a code and give its reason."""
    for line, text in module.comments.items():
        if not text.startswith("lint:"):
            continue
        marker = ALLOW_MARKER.search(text)
        if marker is None or not marker["reason"].strip():
            yield module.violation(
                line, "SC001", "a 'lint: allow <CODE> <reason>' marker needs a code and a reason"
            )


def matches(path: str, pattern: str) -> bool:
    """An allowlist or scope entry names a file, or a directory when it ends with ``/``."""
    return path.startswith(pattern) if pattern.endswith("/") else path == pattern


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)  # what fails the run
    allowlisted: list[Violation] = field(default_factory=list)  # excused by an entry
    marked: list[Violation] = field(default_factory=list)  # excused by an inline marker
    unused_entries: list[tuple[str, str]] = field(default_factory=list)  # (code, path)


def run(
    project: Project,
    checks: Iterable[Check],
    *,
    paths: Iterable[str] | None = None,
    out_of_scope: dict[str, str],
    allowlist: dict[str, dict[str, str]],
) -> Report:
    """Run ``checks`` over the project's modules (or only those under ``paths``)."""
    checks = list(checks)
    wanted = list(paths) if paths is not None else None
    report = Report()
    used: set[tuple[str, str]] = set()
    for module in project.modules.values():
        if wanted is not None and not any(
            module.path == p or module.path.startswith(p.rstrip("/") + "/") for p in wanted
        ):
            continue
        if any(matches(module.path, pattern) for pattern in out_of_scope):
            continue
        found = list(marker_problems(module))
        for check in checks:
            found.extend(check(module, project))
        for violation in found:
            entry = next(
                (p for p in allowlist.get(violation.code, {}) if matches(violation.path, p)), None
            )
            if inline_allowed(module, violation):
                report.marked.append(violation)
            elif entry is not None:
                report.allowlisted.append(violation)
                used.add((violation.code, entry))
            else:
                report.violations.append(violation)
    if wanted is None:
        report.unused_entries = sorted(
            (code, path)
            for code, entries in allowlist.items()
            for path in entries
            if (code, path) not in used
        )
    for found in (report.violations, report.allowlisted, report.marked):
        found.sort()
    return report
