"""The restriction_sweep command runs the morning sweep now and once, and a lender without active
loans sweeps nothing and fails nothing."""

import pytest

from tests.collections.sweeps import newest_state, phone_on_loan, today

pytestmark = pytest.mark.django_db


def test_the_sweep_command_runs_the_morning_sweep_now_and_once(lender_a, capsys) -> None:
    from django.core.management import CommandError, call_command

    device, _ = phone_on_loan(lender_a, days_ago=75)
    call_command("restriction_sweep", "--lender", lender_a.slug)
    call_command("restriction_sweep")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{lender_a.slug} {today(lender_a)}: 1 stage changes, 1 phones told",
        f"{lender_a.slug} {today(lender_a)}: 0 stage changes, 0 phones told",
    ]
    assert newest_state(device).level == "lock"
    with pytest.raises(CommandError, match="No lender"):
        call_command("restriction_sweep", "--lender", "nobody")


def test_a_lender_without_active_loans_sweeps_nothing_and_fails_nothing(
    lender_a, lender_b, capsys
) -> None:
    """A new lender (or one whose loans are all paid off) is swept every morning like any other."""
    from django.core.management import call_command

    from apps.collections.services import loan_sweep_ranges
    from apps.collections.tasks import loan_stage_sweep_lender_task

    phone_on_loan(lender_a, days_ago=75)
    assert loan_sweep_ranges(lender_id=lender_b.pk, size=5000) == []
    loan_stage_sweep_lender_task(lender_id=lender_b.pk)
    call_command("restriction_sweep")
    assert "lender-b" in capsys.readouterr().out
