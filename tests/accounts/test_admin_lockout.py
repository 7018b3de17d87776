import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from tests.accounts.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_six_bad_passwords_lock_the_account(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    login = reverse("admin:login")
    client = Client()
    statuses = [
        client.post(login, {"username": agent.username, "password": f"wrong-{i}"}).status_code
        for i in range(6)
    ]
    # four times the form again, with an error; the fifth failure locks
    assert statuses == [200, 200, 200, 200, 429, 429]

    # locked: the right password, even from another address, does not get in
    other = Client(REMOTE_ADDR="10.9.8.7")
    response = other.post(login, {"username": agent.username, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Account locked" in response.content
    assert "_auth_user_id" not in other.session

    # one event per lockout, however many refused attempts follow it
    event = AuditEvent.objects.get(action="accounts.user.locked_out")
    assert (event.lender_id, event.target_id, event.data) == (
        lender_a.pk,
        str(agent.pk),
        {"user_id": agent.pk},
    )
    assert (event.actor_type, event.ip) == ("system", "127.0.0.1")


def test_logging_into_ones_own_account_does_not_wipe_failures_against_another(
    lender_a, make_agent
) -> None:
    victim, attacker = make_agent(lender_a), make_agent(lender_a)
    login = reverse("admin:login")
    statuses = []
    for round_ in range(3):
        client = Client(REMOTE_ADDR=f"10.0.0.{round_ + 1}")  # a new address each round
        guesses = [
            {"username": victim.username, "password": f"guess-{round_}-{i}"} for i in range(2)
        ]
        statuses.extend(client.post(login, guess).status_code for guess in guesses)
        client.post(login, {"username": attacker.username, "password": PASSWORD})
    # the fifth guess against the victim locks them, whatever happened in between
    assert statuses[4] == 429
    response = Client().post(login, {"username": victim.username, "password": PASSWORD})
    assert response.status_code == 429


def test_a_lockout_of_an_unknown_username_keeps_only_its_hash() -> None:
    client = Client()
    for i in range(5):
        client.post(reverse("admin:login"), {"username": "my-secret-password", "password": f"x{i}"})
    event = AuditEvent.objects.get(action="accounts.user.locked_out")
    assert event.lender_id is None
    assert "my-secret-password" not in str(event.data)
    assert len(event.data["username_sha256"]) == 64


def test_fewer_failures_then_success_do_not_lock(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    client = Client()
    for i in range(4):
        client.post(reverse("admin:login"), {"username": agent.username, "password": f"wrong-{i}"})
    response = client.post(
        reverse("admin:login"), {"username": agent.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="accounts.user.locked_out").exists()
