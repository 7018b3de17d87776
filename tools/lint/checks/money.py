"""SC301-SC305: no float near money.

An expression is about money when a name, attribute, keyword or string key in it has a
word (split at ``_`` and case changes) from ``MONEY_WORDS``: ``late_fee_amount``,
``loan.outstanding``, ``row["principal"]``. Money is a ``Decimal`` built from a string or an
integer and rounded only by ``quantize`` at the named points (STYLE.md section 6).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tools.lint.engine import Module, Project, Rule, Sample, Violation, call_name

MONEY_WORDS = frozenset(
    {
        "amount",
        "amounts",
        "price",
        "prices",
        "money",
        "fee",
        "fees",
        "balance",
        "balances",
        "outstanding",
        "principal",
        "interest",
    }
)
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")

_P = "apps/collections/services/payments.py"


def _samples(*sources: str) -> tuple[Sample, ...]:
    return tuple(Sample(_P, source) for source in sources)


RULES = (
    Rule(
        "SC301",
        "float() of a money expression",
        good=_samples("seconds = float(row['seconds'])", "share = float(count) / total_loans"),
        bad=_samples(
            "x = float(payment.amount)", "x = float(row['outstanding'])", "float(late_fee)"
        ),
    ),
    Rule(
        "SC302",
        "a float literal in arithmetic with money",
        good=_samples(
            "amount = principal * Decimal('1.5')", "delay = attempt * 1.5", "fee = amount / 2"
        ),
        bad=_samples("fee = amount * 0.05", "total = 1.0 + loan.balance", "price_each /= 3.0"),
    ),
    Rule(
        "SC303",
        "a FloatField (money and rates are Decimal)",
        good=_samples("amount = models.DecimalField(max_digits=18, decimal_places=3)"),
        bad=_samples("rate = models.FloatField()", "amount = serializers.FloatField()"),
    ),
    Rule(
        "SC304",
        "round() of a money expression (quantize at the named points)",
        good=_samples(
            "round(elapsed, 2)", "amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)"
        ),
        bad=_samples("round(payment.amount, 2)", "round(interest)"),
    ),
    Rule(
        "SC305",
        "a Decimal built from a float",
        good=_samples("Decimal('0.1')", "Decimal(10)", "Decimal(str(value))"),
        bad=_samples("Decimal(0.1)", "Decimal(-2.5)", "Decimal(float(text))"),
    ),
)


def is_money_word(name: str) -> bool:
    return any(word.lower() in MONEY_WORDS for word in _WORDS.findall(name))


def mentions_money(node: ast.AST) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            name = child.id
        elif isinstance(child, ast.Attribute):
            name = child.attr
        elif isinstance(child, ast.keyword) and child.arg:
            name = child.arg
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            name = child.value if child.value.isidentifier() else ""
        else:
            continue
        if is_money_word(name):
            return True
    return False


def _is_float(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Constant):
        return isinstance(node.value, float)
    return isinstance(node, ast.Call) and call_name(node) == "float"


def _operands(node: ast.expr) -> Iterator[ast.expr]:
    """The leaves of an arithmetic expression: ``a * 0.5 + b`` gives a, 0.5, b."""
    if isinstance(node, ast.BinOp):
        yield from _operands(node.left)
        yield from _operands(node.right)
    else:
        yield node


def check(module: Module, project: Project) -> Iterator[Violation]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [*node.args, *(k.value for k in node.keywords)]
            if node.func.id == "float" and any(mentions_money(a) for a in args):
                yield module.violation(node, "SC301", "float() of money: keep it a Decimal")
            elif node.func.id == "round" and node.args and mentions_money(node.args[0]):
                yield module.violation(
                    node, "SC304", "round() of money: quantize to the currency's minor unit"
                )
            elif node.func.id == "Decimal" and node.args and _is_float(node.args[0]):
                yield module.violation(
                    node, "SC305", "Decimal from a float: build it from a string or an int"
                )
        elif isinstance(node, ast.BinOp) and not isinstance(module.parents.get(node), ast.BinOp):
            leaves = list(_operands(node))
            if any(_is_float(leaf) and not isinstance(leaf, ast.Call) for leaf in leaves) and any(
                mentions_money(leaf) for leaf in leaves
            ):
                yield module.violation(node, "SC302", "a float literal in money arithmetic")
        elif (
            isinstance(node, ast.AugAssign)
            and _is_float(node.value)
            and not isinstance(node.value, ast.Call)
            and (mentions_money(node.target) or mentions_money(node.value))
        ):
            yield module.violation(node, "SC302", "a float literal in money arithmetic")
        elif (isinstance(node, ast.Attribute) and node.attr == "FloatField") or (
            isinstance(node, ast.Name) and node.id == "FloatField"
        ):
            yield module.violation(node, "SC303", "FloatField: money and rates are DecimalField")
