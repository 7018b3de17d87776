"""Drill 7: tamper with a lender's audit chain as someone with the database's keys could;
verify_audit names the first broken link every time."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditChain, AuditEvent
from tests.audit.factories import audit_event_for, tamper
from tests.drills.conftest import scale

pytestmark = [pytest.mark.drill, pytest.mark.django_db]


def first_broken(capsys) -> str:
    capsys.readouterr()
    with pytest.raises(CommandError):
        call_command("verify_audit")
    return next(line for line in capsys.readouterr().out.splitlines() if line.startswith("BROKEN"))


TAMPERINGS = {
    "edit a row's data": (
        'UPDATE audit_auditevent SET data = \'{"amount": "1.00"}\' WHERE id = %(id)s',
        "stored hash does not match",
    ),
    "delete a row in the middle": (
        "DELETE FROM audit_auditevent WHERE id = %(id)s",
        "sequence jumps",
    ),
    "insert a row in the middle": (
        "UPDATE audit_auditevent SET seq = seq + 1000000 WHERE chain_id = %(chain)s AND seq >= %(seq)s;"
        " UPDATE audit_auditevent SET seq = seq - 1000000 + 1 WHERE chain_id = %(chain)s AND seq >= 1000000;"
        " INSERT INTO audit_auditevent (created_at, updated_at, chain_id, seq, lender_id, occurred_at, actor_type,"
        " actor_id, action, target_type, target_id, data, reason, ip, user_agent, prev_hash, hash, format)"
        " SELECT now(), now(), chain_id, %(seq)s, lender_id, now(), 'agent', '1', 'collections.payment.received',"
        " '', '', '{}', '', '', '', prev_hash, repeat('e', 64), 2 FROM audit_auditevent"
        " WHERE chain_id = %(chain)s AND seq = %(seq)s + 1",
        "stored hash does not match",
    ),
    "rewrite a row and its hash": (
        "UPDATE audit_auditevent SET reason = 'approved', hash = repeat('d', 64) WHERE id = %(id)s",
        "stored hash does not match",
    ),
    "cut the newest rows": (
        "DELETE FROM audit_auditevent WHERE chain_id = %(chain)s AND seq >= %(seq)s",
        "chain head says",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_verify_audit_names_the_first_broken_link(lender_a, capsys, report, name) -> None:
    events = [audit_event_for(lender_a, n=n) for n in range(scale(20, 2000))]
    chain = AuditChain.objects.get(lender=lender_a)
    victim = events[len(events) // 2]
    sql, problem = TAMPERINGS[name]
    for statement in sql.split("; "):
        tamper(
            statement.replace("%(id)s", str(victim.pk))
            .replace("%(chain)s", str(chain.pk))
            .replace("%(seq)s", str(victim.seq)),
            [],
        )
    line = first_broken(capsys)
    report(f"audit tamper, {name}: {line}")
    at = victim.seq + 1 if name == "delete a row in the middle" else victim.seq
    assert f"first broken link at seq {at} " in line
    assert problem in line
    assert AuditEvent.objects.filter(chain=chain).exists()
