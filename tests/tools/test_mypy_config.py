"""The promises of STYLE.md section 17 that mypy's own run does not keep by itself.

``make lint`` runs mypy with the configuration in pyproject.toml; these tests keep
that configuration honest: the allowlist only shrinks, the strict modules get every
flag ``--strict`` stands for, and every ``type: ignore`` says why.
"""

import io
import re
import tomllib
from pathlib import Path

import pytest
from mypy.config_parser import parse_config_file
from mypy.main import process_options
from mypy.options import PER_MODULE_OPTIONS, Options

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"

# The allowlist's committed length. Lower it when you take a module off the list;
# never raise it: a module that does not pass gets fixed, not listed.
ALLOWLIST_MAX = 8

# Overrides with ignore_errors that are exclusions, not the allowlist.
EXCLUDED = {"config.settings.*"}

STRICT_SAMPLES = [
    "apps.core.money",
    "apps.core.api.fields",
    "apps.integrations.push.fcm",
    "apps.lenders.services",
    "apps.devices.services.push",
    "apps.lenders.selectors",
    "apps.collections.locks",
    "apps.core.sql",
]

IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<rest>.*)$")
CODED_WITH_REASON = re.compile(r"^\[[a-z0-9-]+(?:,\s*[a-z0-9-]+)*\]\s+#\s*\S")


def _overrides() -> list[dict[str, object]]:
    config = tomllib.loads(PYPROJECT.read_text())
    overrides: list[dict[str, object]] = config["tool"]["mypy"]["overrides"]
    return overrides


def _allowlist() -> list[str]:
    lists = [
        override["module"]
        for override in _overrides()
        if override.get("ignore_errors") and override["module"] != sorted(EXCLUDED)
    ]
    assert len(lists) == 1, "keep the allowlist in one ignore_errors override"
    modules = lists[0]
    assert isinstance(modules, list)
    return modules


def _options() -> Options:
    options = Options()
    parse_config_file(options, lambda: None, str(PYPROJECT), io.StringIO(), io.StringIO())
    return options


def test_allowlist_does_not_grow() -> None:
    allowlist = _allowlist()
    assert len(allowlist) <= ALLOWLIST_MAX, (
        f"the mypy allowlist has {len(allowlist)} modules, more than its {ALLOWLIST_MAX}: "
        "fix the module's types instead of listing it"
    )


def test_allowlist_is_sorted_without_duplicates_or_wildcards() -> None:
    allowlist = _allowlist()
    assert allowlist == sorted(set(allowlist))
    assert not [module for module in allowlist if "*" in module]


def test_allowlist_names_modules_that_exist() -> None:
    """A module that moved takes its entry along: a stale entry would hide its new name."""
    missing = [
        module
        for module in _allowlist()
        if not (ROOT / (module.replace(".", "/") + ".py")).exists()
        and not (ROOT / module.replace(".", "/") / "__init__.py").exists()
    ]
    assert missing == []


@pytest.mark.parametrize("module", STRICT_SAMPLES)
def test_strict_modules_get_every_flag_of_strict(module: str) -> None:
    """``strict`` is global-only in mypy, so the override spells its flags out; a new mypy
    that adds a flag to ``--strict`` fails here until the override has it too."""
    _, strict = process_options(
        ["--strict", "--config-file", "", "-c", "pass"], stdout=io.StringIO(), stderr=io.StringIO()
    )
    _, plain = process_options(
        ["--config-file", "", "-c", "pass"], stdout=io.StringIO(), stderr=io.StringIO()
    )
    flags = {
        name
        for name in PER_MODULE_OPTIONS
        if getattr(strict, name, None) != getattr(plain, name, None)
    }
    assert flags, "mypy's --strict changed no per-module flag: the test is out of date"
    ours = _options().clone_for_module(module)
    assert {name: getattr(ours, name) for name in flags} == {
        name: getattr(strict, name) for name in flags
    }


def test_other_modules_are_checked_but_not_strict() -> None:
    ours = _options().clone_for_module("apps.lenders.admin")
    assert ours.check_untyped_defs
    assert not ours.disallow_untyped_defs
    assert not ours.ignore_errors


def test_every_type_ignore_names_its_code_and_a_reason() -> None:
    offenders = []
    for folder in ("apps", "config", "tools", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                found = IGNORE.search(line)
                if found and not CODED_WITH_REASON.match(found["rest"].strip()):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == [], "write `# type: ignore[code]  # why` (STYLE.md section 17)"
