"""SC401-SC404: the boundaries STYLE.md section 18 promises.

* SC401 ``transaction.atomic`` outside ``services`` and ``locks`` modules: services own
  their transactions (``ATOMIC_REQUESTS`` is off on purpose).
* SC402 ``.objects.get(`` in a view or an API: views read through ``*_for_<principal>``
  selectors, which answer a row of someone else's like a missing one.
* SC403 ``.save()`` or ``.delete()`` outside services: writes go through services.
* SC404 ``.delay(`` or ``.apply_async(`` that is not inside a ``transaction.on_commit``
  lambda: a worker must never see uncommitted rows (the task outbox,
  ``apps.core.outbox``, is the sanctioned path).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from tools.lint.engine import Module, Project, Rule, Sample, Violation, call_name, calls

ATOMIC = "django.db.transaction.atomic"

_S, _L, _V = (
    "apps/collections/services/loans.py",
    "apps/collections/locks.py",
    "apps/collections/views.py",
)


def _rule(code: str, summary: str, good: dict[str, str], bad: dict[str, str]) -> Rule:
    """A rule whose samples are one source per path, good and bad."""

    def samples(sources: dict[str, str]) -> tuple[Sample, ...]:
        return tuple(Sample(path.split("#")[0], source) for path, source in sources.items())

    return Rule(code, summary, samples(good), samples(bad))


# a path may end in "#n" to give the same file a second sample
RULES = (
    _rule(
        "SC401",
        "transaction.atomic outside services and locks",
        good={
            _S: "@transaction.atomic\ndef loan_close(): ...",
            _L: "with transaction.atomic(): ...",
        },
        bad={
            _V: "with transaction.atomic():\n    pass",
            "apps/collections/admin.py": "from django.db.transaction import atomic\n\n@atomic\ndef f(): ...",
        },
    ),
    _rule(
        "SC402",
        ".objects.get( in a view or an API",
        good={
            _V: "loan = loan_get_for_customer(customer=c, loan_id=1)",
            "apps/x/selectors.py": "Loan.objects.get(pk=1)",
        },
        bad={
            _V: "loan = Loan.objects.get(pk=1)",
            "apps/collections/api/views.py": "Loan.objects.get(pk=1)",
        },
    ),
    _rule(
        "SC403",
        ".save() or .delete() outside services",
        good={
            _S: "loan.save(update_fields=['status'])",
            _V: "image.save(buffer, format='PNG')\ncache.delete(key)",
        },
        bad={
            _V: "loan.save()",
            "apps/collections/admin.py": "obj.delete()",
            "apps/collections/forms.py": "self.instance.save(update_fields=['note'])",
        },
    ),
    _rule(
        "SC404",
        ".delay( or .apply_async( not inside an on_commit lambda",
        good={
            _S: "transaction.on_commit(lambda: receipt_send_task.delay(payment_id=payment.id))",
            _S + "#2": "on_commit(lambda: task.apply_async(kwargs=k))",
        },
        bad={
            _S: "receipt_send_task.delay(payment_id=1)",
            _V: "task.apply_async(kwargs=k, countdown=5)",
            _S + "#2": "run(lambda: task.delay(payment_id=1))",
        },
    ),
)


def _is_atomic(module: Module, node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "atomic":
        value = node.value
        named = isinstance(value, ast.Name) and value.id == "transaction"
        return named or module.resolve(value) == "django.db.transaction"
    return isinstance(node, ast.Name) and module.imports.get(node.id) == ATOMIC


def _in_on_commit_lambda(module: Module, node: ast.AST) -> bool:
    for ancestor in module.ancestors(node):
        if isinstance(ancestor, ast.Lambda):
            parent = module.parents.get(ancestor)
            if isinstance(parent, ast.Call) and call_name(parent) == "on_commit":
                return True
    return False


def check(module: Module, project: Project) -> Iterator[Violation]:
    owns_transactions = module.is_in("services", "locks")
    if not owns_transactions:
        for node in ast.walk(module.tree):
            if _is_atomic(module, node):
                yield module.violation(
                    node, "SC401", "transaction.atomic outside services/locks: call a service"
                )
    for call in calls(module.tree):
        name = call_name(call)
        func = call.func
        if (
            module.is_views
            and name == "get"
            and isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "objects"
        ):
            yield module.violation(
                call, "SC402", ".objects.get( in a view: use a *_for_<principal> selector"
            )
        if (
            not module.is_in("services")
            and name in {"save", "delete"}
            and isinstance(func, ast.Attribute)
            and not call.args
        ):
            yield module.violation(call, "SC403", f".{name}() outside services: call a service")
        if (
            name in {"delay", "apply_async"}
            and isinstance(func, ast.Attribute)
            and not _in_on_commit_lambda(module, call)
        ):
            yield module.violation(
                call,
                "SC404",
                f".{name}( outside an on_commit lambda: use apps.core.outbox "
                "(task_enqueue_on_commit)",
            )
