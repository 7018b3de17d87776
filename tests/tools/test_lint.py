"""The house checks of tools/lint: each rule's good and bad samples, the markers and the
allowlist, and the command's output."""

from pathlib import Path
from typing import Any

import pytest

from tools.lint.__main__ import main
from tools.lint.allowlist import ALLOWLIST, OUT_OF_SCOPE
from tools.lint.checks import CHECKS, RULES
from tools.lint.checks.tenancy import LenderOwned, lender_owned
from tools.lint.engine import Project, Report, Sample, Violation, run

ROOT = Path(__file__).resolve().parents[2]


def codes_of(sample: Sample) -> list[str]:
    project = Project.from_sources({**dict(sample.context), sample.path: sample.source})
    module = project.modules[sample.path]
    return [v.code for check in CHECKS for v in check(module, project)]


def _cases(kind: str) -> list[Any]:
    return [
        pytest.param(rule.code, sample, id=f"{rule.code}-{kind}-{n}")
        for rule in RULES
        for n, sample in enumerate(getattr(rule, kind))
    ]


@pytest.mark.parametrize(("code", "sample"), _cases("bad"))
def test_bad_sample_is_reported_when_it_breaks_its_rule(code: str, sample: Sample) -> None:
    assert code in codes_of(sample), sample.source


@pytest.mark.parametrize(("code", "sample"), _cases("good"))
def test_good_sample_is_left_alone_when_it_keeps_its_rule(code: str, sample: Sample) -> None:
    assert code not in codes_of(sample), sample.source


def test_every_rule_has_good_and_bad_samples_and_a_code_of_its_own() -> None:
    codes = [rule.code for rule in RULES]
    assert len(codes) == len(set(codes))
    for rule in RULES:
        assert rule.good, rule.code
        assert rule.bad, rule.code
        assert rule.summary, rule.code


def test_every_exception_names_a_known_code_and_gives_a_reason() -> None:
    known = {rule.code for rule in RULES}
    assert set(ALLOWLIST) <= known
    for entries in (OUT_OF_SCOPE, *ALLOWLIST.values()):
        for path, reason in entries.items():
            assert reason.strip(), path
            assert not path.startswith("/"), path
            assert (ROOT / path).exists(), f"{path} names nothing in the repository"


def _report(sources: dict[str, str], allowlist: dict[str, dict[str, str]] | None = None) -> Report:
    project = Project.from_sources(sources)
    return run(project, CHECKS, out_of_scope=OUT_OF_SCOPE, allowlist=allowlist or {})


def test_inline_marker_with_a_reason_excuses_its_line_only() -> None:
    report = _report(
        {
            "apps/x/views.py": (
                "loan.save()  # lint: allow SC403 the form's own row, not a domain model\n"
                "loan.save()\n"
            )
        }
    )
    assert [(v.line, v.code) for v in report.marked] == [(1, "SC403")]
    assert [(v.line, v.code) for v in report.violations] == [(2, "SC403")]


def test_inline_marker_without_a_reason_is_itself_a_violation() -> None:
    report = _report({"apps/x/views.py": "loan.save()  # lint: allow SC403\n"})
    assert sorted(v.code for v in report.violations) == ["SC001", "SC403"]


def test_allowlist_entry_excuses_its_code_in_its_files_and_unused_ones_are_reported() -> None:
    allowlist = {
        "SC403": {"apps/x/": "being restructured"},
        "SC404": {"apps/y/tasks.py": "gone"},
    }
    report = _report(
        {"apps/x/views.py": "loan.save()\n", "apps/y/views.py": "loan.delete()\n"}, allowlist
    )
    assert [(v.path, v.code) for v in report.allowlisted] == [("apps/x/views.py", "SC403")]
    assert [(v.path, v.code) for v in report.violations] == [("apps/y/views.py", "SC403")]
    assert report.unused_entries == [("SC404", "apps/y/tasks.py")]


def test_out_of_scope_files_are_not_read_by_any_check() -> None:
    report = _report({"tests/x/test_views.py": "loan.save()\n", "tools/bench/x.py": "t.delay()\n"})
    assert report.violations == []


def test_lender_owned_models_are_found_by_their_lender_key() -> None:
    project = Project.from_root(ROOT, ["apps"])
    owned = lender_owned(project)
    assert isinstance(owned, LenderOwned)
    for model in ("Loan", "Installment", "Payment", "Customer", "Device", "AuditEvent", "Sale"):
        assert owned.by_class.get(model), model
    for model in ("Lender", "Retailer", "Shop", "User", "TaskOutbox"):  # no lender key of their own
        assert model not in owned.by_class, model


def test_command_prints_path_line_code_message_and_fails_on_a_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "apps" / "shop").mkdir(parents=True)
    (tmp_path / "apps" / "shop" / "views.py").write_text("def buy(sale):\n    sale.save()\n")
    assert main([], root=tmp_path, allowlist={}) == 1
    assert capsys.readouterr().out.splitlines() == [
        str(Violation("apps/shop/views.py", 2, "SC403", ".save() outside services: call a service"))
    ]
    assert str(Violation("a.py", 3, "SC101", "m")) == "a.py:3: SC101 m"


def test_command_passes_when_nothing_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "apps" / "shop").mkdir(parents=True)
    (tmp_path / "apps" / "shop" / "views.py").write_text("def page(request):\n    return 1\n")
    assert main([], root=tmp_path, allowlist={}) == 0
