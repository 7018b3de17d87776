"""SC101: a lender-owned model's manager is used only by its own app's data-access modules.

Lender-owned: a model with a ``lender`` foreign key, found in the apps' models modules
(by the syntax tree; no database, no ``django.setup()``). Its ``.objects`` (or
``_default_manager``/``_base_manager``) may appear only in its own app's ``selectors``,
``services``, ``locks`` and ``sql`` modules, which scope every query by lender. Views, APIs,
admin classes, forms, tasks, template tags, management commands and other apps go through
those selectors and services; the tenancy mechanism (the admin base class) is the one
allowlisted exception.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from tools.lint.engine import Module, Project, Rule, Sample, Violation

MANAGERS = frozenset({"objects", "_default_manager", "_base_manager"})
FIELDS = frozenset({"ForeignKey", "OneToOneField"})

MODELS = (
    (
        "apps/collections/models.py",
        "from django.db import models\n"
        "from apps.core.models import BaseModel\n\n"
        "class Loan(BaseModel):\n"
        "    lender = models.ForeignKey('lenders.Lender', on_delete=models.PROTECT)\n\n"
        "class LoanNote(BaseModel):\n"
        "    loan = models.ForeignKey(Loan, on_delete=models.PROTECT)\n",
    ),
    ("apps/core/models.py", "class TaskOutbox(models.Model):\n    task = models.CharField()\n"),
)
_IMPORT = "from apps.collections.models import Loan, LoanNote\n"

RULES = (
    Rule(
        "SC101",
        "a lender-owned model's manager outside its app's selectors/services/locks/sql",
        good=(
            Sample("apps/collections/selectors.py", _IMPORT + "Loan.objects.filter(pk=1)", MODELS),
            Sample(
                "apps/collections/services/loans.py", _IMPORT + "Loan.objects.get(pk=1)", MODELS
            ),
            Sample(
                "apps/collections/locks.py", "from .models import Loan\nLoan.objects.all()", MODELS
            ),
            Sample("apps/collections/views.py", _IMPORT + "LoanNote.objects.all()", MODELS),
            Sample(
                "apps/core/admin.py",
                "from .models import TaskOutbox\nTaskOutbox.objects.all()",
                MODELS,
            ),
            Sample("apps/customers/views.py", "loan.installments.all()", MODELS),
        ),
        bad=(
            Sample("apps/collections/views.py", _IMPORT + "Loan.objects.filter(pk=1)", MODELS),
            Sample("apps/collections/admin.py", _IMPORT + "Loan._default_manager.all()", MODELS),
            Sample("apps/devices/services.py", _IMPORT + "Loan.objects.filter(pk=1)", MODELS),
            Sample(
                "apps/collections/management/commands/sweep.py",
                "from apps.collections import models\nmodels.Loan.objects.count()",
                MODELS,
            ),
            Sample(
                "apps/collections/tasks.py",
                "from .models import Loan as L\nL.objects.all()",
                MODELS,
            ),
        ),
    ),
)


@dataclass(frozen=True)
class LenderOwned:
    by_name: dict[str, str]  # dotted name of the model -> its app
    by_class: dict[str, str | None]  # class name -> its app (None when two apps share it)


def _has_lender_key(node: ast.ClassDef) -> bool:
    for statement in node.body:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == "lender" for t in targets):
            continue
        func = value.func if isinstance(value, ast.Call) else None
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in FIELDS:
            return True
    return False


def lender_owned(project: Project) -> LenderOwned:
    """Every model with a ``lender`` foreign key (or inheriting one from a project model)."""
    classes: dict[str, tuple[Module, ast.ClassDef]] = {}
    for module in project.modules.values():
        if module.is_in("models"):
            for node in module.tree.body:
                if isinstance(node, ast.ClassDef):
                    classes[f"{module.dotted}.{node.name}"] = (module, node)
    owned = {name for name, (_, node) in classes.items() if _has_lender_key(node)}
    changed = True
    while changed:  # a subclass of a lender-owned (abstract) model is lender-owned
        changed = False
        for name, (module, node) in classes.items():
            if name not in owned and any(module.resolve(b) in owned for b in node.bases):
                owned.add(name)
                changed = True
    by_name: dict[str, str] = {}
    by_class: dict[str, str | None] = {}
    for name in owned:
        module, node = classes[name]
        app = module.app or ""
        by_name[name] = app
        by_name[f"apps.{app}.models.{node.name}"] = app  # as a models package re-exports it
        by_class[node.name] = app if by_class.get(node.name, app) == app else None
    return LenderOwned(by_name, by_class)


def _model_of(module: Module, node: ast.expr, owned: LenderOwned) -> tuple[str, str] | None:
    """(class name, app) when ``node`` names a lender-owned model, else None."""
    name = module.resolve(node)
    if name is None:
        return None
    if name in owned.by_name:
        return name.rpartition(".")[2], owned.by_name[name]
    last = name.rpartition(".")[2]
    local = isinstance(node, ast.Name) and node.id not in module.imports
    defined_here = any(isinstance(n, ast.ClassDef) and n.name == last for n in module.tree.body)
    if (name.startswith("apps.") or local) and not defined_here:
        app = owned.by_class.get(last)
        if app:
            return last, app
    return None


def check(module: Module, project: Project) -> Iterator[Violation]:
    owned = project.index(lender_owned)
    data_access = module.is_in("selectors", "services", "locks", "sql")
    for node in ast.walk(module.tree):
        if not (isinstance(node, ast.Attribute) and node.attr in MANAGERS):
            continue
        found = _model_of(module, node.value, owned)
        if found is None:
            continue
        model, app = found
        if data_access and module.app == app:
            continue
        yield module.violation(
            node,
            "SC101",
            f"{model}.{node.attr} outside {app}'s selectors/services/locks/sql: "
            f"call a selector or service of apps.{app} (lender-owned rows are scoped there)",
        )
