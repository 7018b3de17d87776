"""The house checks, each a module with ``RULES`` (codes, summaries, samples) and ``check``."""

from tools.lint.checks import audit, boundaries, money, tenancy
from tools.lint.engine import Check, Rule

MODULES = (tenancy, audit, money, boundaries)
CHECKS: tuple[Check, ...] = tuple(module.check for module in MODULES)
RULES: tuple[Rule, ...] = tuple(rule for module in MODULES for rule in module.RULES)
