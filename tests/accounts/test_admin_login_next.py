"""Where the back-office login lands: a ``next=`` pointing off the site lands on the index."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.accounts.factories import PASSWORD, TOTPDeviceFactory
from tests.conftest import current_code

pytestmark = pytest.mark.django_db

UNSAFE = [
    "https://evil.example/",
    "//evil",
    "///evil.example/",
    "/\\evil.example",
    "javascript:alert(1)",
]


def log_in_from(client: Client, url: str, user, device):
    """Open ``url``, submit the password form as a browser would, then the code form."""
    page = client.get(url)
    assert page.status_code == 200
    hidden = re.search(r'name="next" value="([^"]*)"', page.content.decode())
    fields = {"username": user.username, "password": PASSWORD}
    if hidden:
        fields["next"] = hidden.group(1)
    response = client.post(url, fields, follow=True)
    assert response.status_code == 200, response.redirect_chain
    assert b'name="otp_token"' in response.content, response.redirect_chain
    code_step = response.request["PATH_INFO"] + (
        "?" + response.request["QUERY_STRING"] if response.request["QUERY_STRING"] else ""
    )
    hidden = re.search(r'name="next" value="([^"]*)"', response.content.decode())
    fields = {"otp_token": current_code(device), **({"next": hidden.group(1)} if hidden else {})}
    return client.post(code_step, fields, follow=True)


@pytest.mark.parametrize("unsafe", UNSAFE)
def test_login_lands_on_the_admin_index_when_next_points_off_the_site(
    lender_a, make_agent, unsafe
) -> None:
    agent = make_agent(lender_a)
    device = TOTPDeviceFactory(user=agent)
    client = Client()
    response = log_in_from(client, f"{reverse('admin:login')}?next={unsafe}", agent, device)
    assert response.status_code == 200, response.redirect_chain
    assert response.request["PATH_INFO"] == reverse("admin:index"), response.redirect_chain
    assert all("evil" not in location for location, _ in response.redirect_chain)


def test_login_follows_next_when_it_stays_on_the_site(lender_a, make_agent) -> None:
    agent = make_agent(lender_a)
    device = TOTPDeviceFactory(user=agent)
    target = reverse("admin:collections_loan_changelist")
    response = log_in_from(Client(), f"{reverse('admin:login')}?next={target}", agent, device)
    assert response.status_code == 200, response.redirect_chain
    assert response.request["PATH_INFO"] == target
