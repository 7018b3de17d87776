"""verify_audit passes an intact chain and names what is wrong with a broken one: an event forged
past the head, moved to another lender, a deleted row, a cut-off tail."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.audit.factories import audit_event_for, tamper

pytestmark = pytest.mark.django_db


def test_verify_command_passes_on_an_intact_chain(lender_a, capsys) -> None:
    for _ in range(5):
        audit_event_for(lender_a)
    call_command("verify_audit", "--lender", lender_a.slug)
    assert "OK      lender-a: 5 events" in capsys.readouterr().out


def test_verify_command_rejects_an_unknown_lender() -> None:
    with pytest.raises(CommandError, match="No such lender"):
        call_command("verify_audit", "--lender", "nope")


def test_verify_names_an_event_forged_past_the_head(lender_a, capsys) -> None:
    first = audit_event_for(lender_a)
    tamper(
        "INSERT INTO audit_auditevent (created_at, updated_at, chain_id, seq, lender_id, occurred_at, actor_type,"
        " actor_id, action, target_type, target_id, data, reason, ip, user_agent, prev_hash, hash)"
        " SELECT now(), now(), chain_id, 2, lender_id, now(), 'system', '', 'forged', '', '', '{}', '', '', '',"
        " hash, repeat('f', 64) FROM audit_auditevent WHERE id = %s",
        [first.pk],
    )
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert "first broken link at seq 2" in capsys.readouterr().out


def test_verify_names_an_event_moved_to_another_lender(lender_a, lender_b, capsys) -> None:
    event = audit_event_for(lender_a)
    tamper("UPDATE audit_auditevent SET lender_id = %s WHERE id = %s", [lender_b.pk, event.pk])
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert "names another lender than its chain" in capsys.readouterr().out


def test_verify_names_the_first_broken_link_when_a_row_is_deleted(lender_a, capsys) -> None:
    events = [audit_event_for(lender_a) for _ in range(4)]
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError):
        call_command("verify_audit")
    out = capsys.readouterr().out
    assert (
        f"BROKEN  lender-a: first broken link at seq 3 (event id {events[2].pk}): sequence jumps"
        in out
    )


def test_verify_names_a_cut_off_tail(lender_a, capsys) -> None:
    events = [audit_event_for(lender_a) for _ in range(3)]
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert "first broken link at seq 3 (no event): chain head says seq 3" in capsys.readouterr().out
