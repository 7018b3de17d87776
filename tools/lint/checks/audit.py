"""SC201, SC202: every public service that writes records an audit event, or says why not.

A public service is a top-level function not starting with ``_`` in an app's ``services``
module (``services.py`` or a module of the ``services/`` package). It writes when it, one
of its module's private helpers, or another service it calls (a call graph over the
project's services, by name through the imports):

* calls ``.save()``, ``.delete()``, ``.create(...)``, ``.update(**fields)``,
  ``bulk_create``, ``bulk_update``, ``get_or_create`` or ``update_or_create``;
* executes SQL that inserts, updates, deletes, merges or truncates (the statement's text
  is followed through module constants, the imports and the functions that build it; a
  statement whose text cannot be found counts as a write).

It records when it, a private helper or a service it calls, calls one of ``RECORDERS``
or builds an ``AuditEntry`` (a step that hands its caller the entry to record).
A service that writes and records nothing carries a marker saying why, on its ``def``
line (any line of its signature) or as a line of its docstring (a caller whose only
writes go through it is then excused too: the reason holds for them)::

    def device_token_store(*, device_id: int, token: str) -> None:  # audit: none, <reason>

    \"\"\"...
    Audit: none, <reason>.
    \"\"\"

SC202 reports a marker without a reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from tools.lint.engine import Module, Project, Rule, Sample, Violation, calls, is_model_write

#: The audit recorders: calling any of them records the change in the audit chain.
RECORDERS = frozenset(
    {
        "audit_event_record",
        "audit_events_record",
        "audit_events_record_select",
        "audit_record",  # the port in apps/core/audit.py, for the apps below audit
    }
)
#: What a step builds to hand its caller an event to record.
ENTRIES = frozenset({"AuditEntry"})

MARKER = re.compile(r"^\s*(?:#\s*)?audit:\s*none\b[\s,:;.-]*(?P<reason>.*)$", re.I | re.M)
_LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?UPDATE\b|\bDO\s+UPDATE\b")
_WRITING = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE)\b")

_MODELS = ("apps/collections/models.py", "class Loan(BaseModel):\n    pass\n")
_AUDIT = (
    "apps/audit/services.py",
    "def audit_event_record(*, actor, action, target=None, data=None, reason=''):\n"
    "    return _append(actor, action, target, data, reason)\n",
)
_OTHER = (
    "apps/devices/services.py",
    "from apps.audit.services import audit_event_record\n\n"
    "def device_lock(*, device):\n"
    "    device.save()\n"
    "    audit_event_record(actor=None, action='devices.locked', target=device)\n\n"
    "def device_seen(*, device):  # audit: none, a check-in's time is not a state change\n"
    "    device.save(update_fields=['seen_at'])\n",
)
_CTX = (_MODELS, _AUDIT, _OTHER)
_HEAD = "from apps.audit.services import audit_event_record\nfrom apps.devices.services import device_lock, device_seen\n\n"
_PATH = "apps/collections/services/loans.py"

RULES = (
    Rule(
        "SC201",
        "a public service writes and neither records an audit event nor says why not",
        good=(
            Sample(
                _PATH,
                _HEAD
                + "def loan_close(*, loan, actor):\n    loan.status = 'closed'\n    loan.save()\n"
                "    audit_event_record(actor=actor, action='collections.loan.closed', target=loan)\n",
                _CTX,
            ),
            Sample(  # recording through a private helper
                _PATH,
                _HEAD
                + "def loan_close(*, loan, actor):\n    loan.save()\n    _record(loan, actor)\n\n"
                "def _record(loan, actor):\n    audit_event_record(actor=actor, action='x', target=loan)\n",
                _CTX,
            ),
            Sample(  # recording through another app's service
                _PATH,
                _HEAD
                + "def loan_lock(*, loan):\n    loan.save()\n    device_lock(device=loan.device)\n",
                _CTX,
            ),
            Sample(
                _PATH,
                _HEAD + "def loan_touch(*, loan):  # audit: none, only a cache of derived figures\n"
                "    Loan.objects.filter(pk=loan.pk).update(touched_at=now())\n",
                _CTX,
            ),
            Sample(
                _PATH,
                _HEAD
                + 'def loan_touch(*, loan):\n    """Touch it.\n\n    Audit: none, a cache.\n    """\n'
                "    loan.delete()\n",
                _CTX,
            ),
            Sample(
                _PATH,
                "def loan_figures(*, loan):\n    data = {}\n    data.update(loan.figures)\n    return data\n",
                _CTX,
            ),
            Sample(
                _PATH,
                "def loan_hold(*, loan_id):\n    with connection.cursor() as cursor:\n"
                "        cursor.execute('SELECT 1 FROM loans WHERE id = %s FOR UPDATE', [loan_id])\n",
                _CTX,
            ),
            Sample(_PATH, "def _loan_save(*, loan):\n    loan.save()\n", _CTX),
            Sample(  # a step that hands its caller the event to record
                _PATH,
                "def loan_transition(*, loan, to, actor):\n    loan.status = to\n    loan.save()\n"
                "    return AuditEntry(actor=actor, action='collections.loan.moved', target=loan)\n",
                _CTX,
            ),
            Sample(  # its only write goes through a service marked 'audit: none'
                _PATH,
                _HEAD + "def loan_seen(*, loan):\n    device_seen(device=loan.device)\n",
                _CTX,
            ),
        ),
        bad=(
            Sample(
                _PATH,
                "def loan_close(*, loan):\n    loan.status = 'closed'\n    loan.save()\n",
                _CTX,
            ),
            Sample(
                _PATH,
                "def loan_touch(*, loan):\n    Loan.objects.filter(pk=loan.pk).update(seen=True)\n",
                _CTX,
            ),
            Sample(_PATH, "def loan_add(**kw):\n    return Loan.objects.create(**kw)\n", _CTX),
            Sample(
                _PATH,
                "def loan_close(*, loan):\n    _close(loan)\n\ndef _close(loan):\n    loan.delete()\n",
                _CTX,
            ),
            Sample(
                _PATH,
                "from apps.collections.services.books import loan_book\n\n"
                "def loan_open(*, loan):\n    loan_book(loan=loan)\n",
                (
                    *_CTX,
                    (
                        "apps/collections/services/books.py",
                        "def loan_book(*, loan):\n    loan.save()\n",
                    ),
                ),
            ),
            Sample(
                _PATH,
                "_CLOSE = 'UPDATE loans SET status = %s WHERE id = %s'\n\n"
                "def loan_close(*, loan_id):\n    with connection.cursor() as cursor:\n"
                "        cursor.execute(_CLOSE, ['closed', loan_id])\n",
                _CTX,
            ),
        ),
    ),
    Rule(
        "SC202",
        "an 'audit: none' marker gives no reason",
        good=(
            Sample(
                _PATH,
                "def loan_touch(*, loan):  # audit: none, derived figures only\n    loan.save()\n",
                _CTX,
            ),
        ),
        bad=(Sample(_PATH, "def loan_touch(*, loan):  # audit: none\n    loan.save()\n", _CTX),),
    ),
)


@dataclass
class Function:
    module: Module
    node: ast.FunctionDef | ast.AsyncFunctionDef
    writes: list[tuple[int, str]] = field(default_factory=list)  # (line, what) of direct writes
    records: bool = False
    marked: bool = False  # carries an 'audit: none' marker
    callees: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def public(self) -> bool:
        return not self.name.startswith("_")


@dataclass
class Graph:
    functions: dict[str, Function]  # dotted name -> function
    writes: dict[str, str]  # dotted name -> how it writes (first evidence found)
    records: set[str]


def _strings(module: Module, node: ast.AST, project: Project, depth: int = 0) -> list[str]:
    """The SQL text an expression may hold: its string literals, and those of the constants
    and statement-building functions it names (in its module or, by import, the project's)."""
    if depth > 3:
        return []
    found: list[str] = []
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.append(child.value)
        elif isinstance(child, ast.Name | ast.Attribute):
            target = _definition(module, child, project)
            if target is not None:
                found.extend(_strings(target[0], target[1], project, depth + 1))
    return found


def _definition(module: Module, node: ast.expr, project: Project) -> tuple[Module, ast.AST] | None:
    if isinstance(node, ast.Name):
        if node.id in module.constants:
            return module, module.constants[node.id]
        if node.id in module.functions:
            return module, _body(module.functions[node.id])
    name = module.resolve(node)
    if name is None or name.startswith(module.dotted + "."):
        return None
    owner, _, attr = name.rpartition(".")
    other = project.by_dotted.get(owner)
    if other is None:
        return None
    if attr in other.constants:
        return other, other.constants[attr]
    if attr in other.functions:
        return other, _body(other.functions[attr])
    return None


def _body(node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Module:
    """A function's statements without its docstring."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return ast.Module(body=list(body), type_ignores=[])


def sql_writes(module: Module, call: ast.Call, project: Project) -> str | None:
    if not (isinstance(call.func, ast.Attribute) and call.func.attr in {"execute", "executemany"}):
        return None
    if not call.args:
        return None
    text = "\n".join(_strings(module, call.args[0], project))
    if not text.strip():
        return "SQL whose text is not found"
    return "a writing SQL statement" if _WRITING.search(_LOCKING.sub(" ", text)) else None


def _callee(module: Module, call: ast.Call, services: dict[str, list[str]]) -> str | None:
    """The dotted name of the project service or local helper a call reaches, if any."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in module.functions and func.id not in module.imports:
        return f"{module.dotted}.{func.id}"
    name = module.resolve(func) if isinstance(func, ast.Name | ast.Attribute) else None
    if name is None:
        return None
    owner, _, attr = name.rpartition(".")
    candidates = services.get(attr, [])
    if name in candidates:
        return name
    # a package re-exports its modules' names: apps.x.services.f is apps.x.services.m.f
    near = [c for c in candidates if c.startswith(owner + ".")]
    if len(near) == 1:
        return near[0]
    if owner.startswith("apps.") and len(candidates) == 1 and ".services" in owner:
        return candidates[0]
    return None


def graph(project: Project) -> Graph:
    functions: dict[str, Function] = {}
    for module in project.modules.values():
        if module.is_in("services"):
            for name, node in module.functions.items():
                functions[f"{module.dotted}.{name}"] = Function(module, node)
    services: dict[str, list[str]] = {}
    for dotted, function in functions.items():
        services.setdefault(function.name, []).append(dotted)
    for function in functions.values():
        module = function.module
        for call in calls(function.node):
            name = (
                call.func.attr
                if isinstance(call.func, ast.Attribute)
                else getattr(call.func, "id", "")
            )
            if name in RECORDERS or name in ENTRIES:
                function.records = True
            what = is_model_write(call) or sql_writes(module, call, project)
            if what is not None:
                function.writes.append((call.lineno, what))
            callee = _callee(module, call, services)
            if callee is not None and callee != f"{module.dotted}.{function.name}":
                function.callees.add(callee)
        if function.name in RECORDERS:
            function.records = True
        function.marked = marker(module, function.node) is not None
    writes = {
        dotted: f"{f.writes[0][1]} at line {f.writes[0][0]}"
        for dotted, f in functions.items()
        if f.writes
    }
    records = {dotted for dotted, f in functions.items() if f.records}
    changed = True
    while changed:
        changed = False
        for dotted, function in functions.items():
            for callee in sorted(function.callees):
                marked = functions[callee].marked
                if callee in writes and not marked and dotted not in writes:
                    writes[dotted] = f"through {callee.rpartition('.')[2]}()"
                    changed = True
                if callee in records and dotted not in records:
                    records.add(dotted)
                    changed = True
    return Graph(functions, writes, records)


def marker(module: Module, node: ast.FunctionDef | ast.AsyncFunctionDef) -> re.Match[str] | None:
    """The ``audit: none`` marker on the signature's lines or in the docstring, if any."""
    end = node.body[0].lineno if node.body else node.lineno + 1
    for line in range(node.lineno, end):
        found = MARKER.match(module.comments.get(line, ""))
        if found:
            return found
    return MARKER.search(ast.get_docstring(node) or "")


def check(module: Module, project: Project) -> Iterator[Violation]:
    if not module.is_in("services"):
        return
    found = project.index(graph)
    for name, node in module.functions.items():
        dotted = f"{module.dotted}.{name}"
        said = marker(module, node)
        if said is not None and not said["reason"].strip():
            yield module.violation(node, "SC202", f"{name}: 'audit: none' needs a reason after it")
        if name.startswith("_") or dotted not in found.writes or dotted in found.records:
            continue
        if said is None:
            yield module.violation(
                node,
                "SC201",
                f"service {name} writes ({found.writes[dotted]}) and records no audit event: "
                f"call {min(RECORDERS)} or mark it '# audit: none, <reason>'",
            )
