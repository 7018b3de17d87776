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

    # each refused attempt is on the record: the locking one and the two after it
    events = AuditEvent.objects.filter(action="accounts.user.locked_out").order_by("seq")
    assert [(e.lender_id, e.target_id) for e in events] == [(lender_a.pk, str(agent.pk))] * 3
    assert events[2].ip == "10.9.8.7"


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
