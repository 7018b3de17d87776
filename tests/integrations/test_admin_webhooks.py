"""Webhook endpoints and their delivery log in the back office: the lender's admin adds an
endpoint and sees its secret once, rotates it, and sends a delivery again; nobody else's
endpoints or deliveries are visible."""

import re

import pytest
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.lenders.models import Membership
from tests.collections.factories import signed_loan
from tests.integrations.test_webhooks import send_until_done

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def add_endpoint(client, lender, url, **values):
    return client.post(
        reverse("admin:integrations_webhookendpoint_add"),
        {"lender": lender.pk, "url": url, "description": "CRM", "enabled": "on", **values},
        follow=True,
    )


def test_the_lenders_admin_adds_an_endpoint_and_sees_its_secret_once(
    lender_a, make_agent, verified_client, receiver
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))

    page = add_endpoint(client, lender_a, receiver.url, event_types=["loan.signed"])

    assert page.status_code == 200
    [secret] = SECRET.findall(page.content.decode())
    endpoint = WebhookEndpoint.objects.get(lender=lender_a)
    assert endpoint.event_types == ["loan.signed"]
    change = client.get(reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk]))
    assert secret not in change.content.decode()
    # the secret shown is the one that signs
    signed_loan(lender_a)
    send_until_done()
    [post] = receiver.posts
    assert Webhook(secret).verify(post.body, post.headers)["type"] == "loan.signed"


def test_rotating_shows_the_new_secret_and_both_sign(
    lender_a, make_agent, verified_client, receiver
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    [old] = SECRET.findall(add_endpoint(client, lender_a, receiver.url).content.decode())
    endpoint = WebhookEndpoint.objects.get(lender=lender_a)

    page = client.post(
        reverse("admin:integrations_webhookendpoint_changelist"),
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
        follow=True,
    )

    [new] = SECRET.findall(page.content.decode())
    assert new != old
    signed_loan(lender_a)
    send_until_done()
    [post] = receiver.posts
    for secret in (old, new):
        Webhook(secret).verify(post.body, post.headers)


def test_send_again_from_the_delivery_log(lender_a, make_agent, verified_client, receiver) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    add_endpoint(client, lender_a, receiver.url)
    signed_loan(lender_a)
    receiver.answers = [410]  # the receiver was misconfigured: the endpoint goes off
    send_until_done()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    log = client.get(reverse("admin:integrations_webhookdelivery_changelist"))
    assert "loan.signed" in log.content.decode()
    endpoint = WebhookEndpoint.objects.get()
    client.post(
        reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk]),
        {"url": endpoint.url, "description": "CRM", "enabled": "on"},
    )

    client.post(
        reverse("admin:integrations_webhookdelivery_changelist"),
        {"action": "send_again", "_selected_action": [delivery.pk]},
    )
    send_until_done()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert [p.status for p in receiver.posts] == [410, 200]


def test_agents_cannot_and_other_lenders_see_nothing(
    lender_a, lender_b, make_agent, verified_client, receiver
) -> None:
    admin_a = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    add_endpoint(admin_a, lender_a, receiver.url)
    signed_loan(lender_a)
    send_until_done()
    endpoint, delivery = WebhookEndpoint.objects.get(), WebhookDelivery.objects.get()

    agent = verified_client(make_agent(lender_a))
    assert agent.get(reverse("admin:integrations_webhookendpoint_add")).status_code == 403
    admin_b = verified_client(make_agent(lender_b, role=Membership.Role.LENDER_ADMIN))
    change = reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk])
    assert admin_b.get(change).status_code == 404
    log = admin_b.get(reverse("admin:integrations_webhookdelivery_changelist"))
    assert receiver.url not in log.content.decode()
    admin_b.post(
        reverse("admin:integrations_webhookdelivery_changelist"),
        {"action": "send_again", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.status) == (1, "delivered")
