"""Outbound webhooks: signed in the Standard Webhooks format, delivered at least once, in
order per loan, retried, stopped, rotated, and never to another lender's endpoint."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.core.actor import Actor
from apps.core.models import TaskOutbox
from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.integrations.services.webhooks import (
    webhook_deliveries_resend,
    webhook_endpoint_create,
    webhook_endpoint_secret_rotate,
    webhooks_dispatch,
    webhooks_project,
    webhooks_send,
)
from apps.lenders.models import Membership
from tests.collections.factories import signed_loan
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


def endpoint_for(lender, receiver, **kwargs):
    return webhook_endpoint_create(
        lender_id=lender.pk, url=receiver.url, actor=Actor.system(), **kwargs
    )


def send_until_done(*, rounds: int = 40) -> None:
    """Project, then send round after round, each an hour later than the last (every retry
    due by then), until nothing is left pending."""
    webhooks_project()
    now = timezone.now()
    for hour in range(rounds):
        webhooks_send(now=now + timedelta(hours=hour))
        if not WebhookDelivery.objects.filter(status="pending").exists():
            return
    raise AssertionError("deliveries still pending")


def test_a_delivery_verifies_with_the_standard_webhooks_library(lender_a, receiver) -> None:
    created = endpoint_for(lender_a, receiver)
    assert created.secret.startswith("whsec_")
    loan = signed_loan(lender_a)

    webhooks_dispatch(seconds=5)

    [post] = receiver.posts
    payload = Webhook(created.secret).verify(post.body, post.headers)
    assert payload["type"] == "loan.signed"
    assert payload["data"]["loan_id"] == loan.pk
    assert post.headers["webhook-id"] == payload["id"]
    assert post.headers["webhook-signature"].startswith("v1,")
    assert post.headers["webhook-signature"].count("v1,") == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(created.secret).verify(post.body.replace(b"loan", b"LOAN"), post.headers)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)


def test_the_secret_is_sealed_at_rest(lender_a, receiver) -> None:
    created = endpoint_for(lender_a, receiver)
    stored = WebhookEndpoint.objects.get(pk=created.endpoint.pk).sealed_secrets
    assert created.secret not in stored
    assert created.secret.removeprefix("whsec_") not in stored


def test_every_event_arrives_once_in_order_per_loan_after_the_receiver_was_down(
    lender_a, receiver
) -> None:
    endpoint_for(lender_a, receiver)
    loans = [enrolled_phone(lender_a)[0].loan for _ in range(3)]
    receiver.answers = [503] * 7  # down for the first seven posts, then up

    send_until_done()

    taken = receiver.taken()
    ids = [p["id"] for p in taken]
    assert len(ids) == len(set(ids)) == WebhookDelivery.objects.count() == 6
    assert any(p.status == 503 for p in receiver.posts)
    for loan in loans:
        mine = [p for p in taken if p["data"]["loan_id"] == loan.pk]
        assert [p["type"] for p in mine] == ["loan.signed", "device.enrolled"]
        # and no post of the loan, failed or not, ever went ahead of an earlier one
        tried = [
            int(p.payload["id"].removeprefix("evt_"))
            for p in receiver.posts
            if p.payload["data"]["loan_id"] == loan.pk
        ]
        assert tried == sorted(tried)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_410_stops_at_once_and_tells_the_lenders_admins(
    lender_a, receiver, make_agent, django_capture_on_commit_callbacks
) -> None:
    make_agent(lender_a, role=Membership.Role.LENDER_ADMIN, email="admin@lender-a.test")
    created = endpoint_for(lender_a, receiver)
    signed_loan(lender_a)
    receiver.answers = [410]
    webhooks_project()

    with django_capture_on_commit_callbacks(execute=True):
        webhooks_send()

    endpoint = WebhookEndpoint.objects.get(pk=created.endpoint.pk)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert WebhookDelivery.objects.get().status == "failed"
    [message] = mail.outbox
    assert "410" in message.body
    signed_loan(lender_a)
    send_until_done()
    assert len(receiver.posts) == 1  # nothing more once it said Gone


def test_a_day_of_failures_turns_the_endpoint_off_and_emails_its_admins(
    lender_a, receiver, make_agent, django_capture_on_commit_callbacks
) -> None:
    make_agent(lender_a, role=Membership.Role.LENDER_ADMIN, email="admin@lender-a.test")
    make_agent(lender_a, role=Membership.Role.AGENT, email="agent@lender-a.test")
    created = endpoint_for(lender_a, receiver)
    signed_loan(lender_a)
    receiver.answers = [500] * 100
    webhooks_project()
    now = timezone.now()
    webhooks_send(now=now)
    assert WebhookEndpoint.objects.get(pk=created.endpoint.pk).enabled  # failing, not yet a day
    with django_capture_on_commit_callbacks(execute=True):
        webhooks_send(now=now + timedelta(hours=25))

    endpoint = WebhookEndpoint.objects.get(pk=created.endpoint.pk)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
    [message] = mail.outbox
    assert message.to == ["admin@lender-a.test"]
    assert receiver.url in message.subject
    assert WebhookDelivery.objects.get().status == "pending"  # kept for "send again"


def test_retries_stop_after_three_days(lender_a, receiver) -> None:
    endpoint_for(lender_a, receiver)
    signed_loan(lender_a)
    receiver.answers = [500] * 1000
    webhooks_project()
    now = timezone.now()
    WebhookEndpoint.objects.update(failing_since=None)
    for hour in range(0, 80, 2):
        WebhookEndpoint.objects.update(failing_since=None)  # not turned off: the window ends
        webhooks_send(now=now + timedelta(hours=hour))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.last_attempt_at < now + timedelta(hours=73)
    attempts = len(receiver.posts)
    assert 8 <= attempts <= 20  # exponential: 5 s, 15 s, 45 s, ... then every 12 h


def test_a_rotation_signs_with_both_secrets(lender_a, receiver) -> None:
    created = endpoint_for(lender_a, receiver)
    rotated = webhook_endpoint_secret_rotate(
        lender_id=lender_a.pk, endpoint_id=created.endpoint.pk, actor=Actor.system()
    )
    signed_loan(lender_a)

    send_until_done()

    [post] = receiver.posts
    assert post.headers["webhook-signature"].count("v1,") == 2
    for secret in (created.secret, rotated.secret):
        assert Webhook(secret).verify(post.body, post.headers)["type"] == "loan.signed"


def test_a_lenders_endpoints_never_get_another_lenders_events(
    lender_a, lender_b, receiver, receiver_b
) -> None:
    endpoint_for(lender_a, receiver)
    endpoint_for(lender_b, receiver_b)
    a_loans = {signed_loan(lender_a).pk for _ in range(2)}
    b_loans = {signed_loan(lender_b).pk for _ in range(3)}

    send_until_done()

    assert {p["data"]["loan_id"] for p in receiver.taken()} == a_loans
    assert {p["data"]["loan_id"] for p in receiver_b.taken()} == b_loans


def test_an_endpoint_takes_only_its_types_and_no_history(lender_a, receiver) -> None:
    signed_loan(lender_a)  # before the endpoint: not replayed
    endpoint_for(lender_a, receiver, event_types=["device.enrolled"])
    enrolled_phone(lender_a)

    send_until_done()

    assert [p["type"] for p in receiver.taken()] == ["device.enrolled"]


def test_send_again_delivers_a_failed_delivery_once_more(lender_a, receiver) -> None:
    endpoint_for(lender_a, receiver)
    signed_loan(lender_a)
    send_until_done()
    delivery = WebhookDelivery.objects.get()

    assert (
        webhook_deliveries_resend(
            lender_id=lender_a.pk, delivery_ids=[delivery.pk], actor=Actor.system()
        )
        == 1
    )
    send_until_done()

    assert [p.headers["webhook-id"] for p in receiver.posts] == [f"evt_{delivery.event_id}"] * 2
    assert (
        webhook_deliveries_resend(
            lender_id=lender_a.pk + 1000, delivery_ids=[delivery.pk], actor=Actor.system()
        )
        == 0
    )


def test_a_change_nudges_the_dispatcher_when_it_commits(
    lender_a, receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint_for(lender_a, receiver)

    with django_capture_on_commit_callbacks(execute=True):
        loan = signed_loan(lender_a)

    assert [p["data"]["loan_id"] for p in receiver.taken()] == [loan.pk]


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_a_sale_reaches_the_receiver_through_a_real_worker_on_redis(
    redis_worker, lender_a, receiver
) -> None:
    created = endpoint_for(lender_a, receiver)

    loan = signed_loan(lender_a)  # commits: the nudge goes through the outbox to Redis

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not receiver.taken():
        time.sleep(0.05)
    [post] = receiver.posts
    assert Webhook(created.secret).verify(post.body, post.headers)["data"]["loan_id"] == loan.pk
    assert not TaskOutbox.objects.exists()  # the broker took the nudge


def test_the_dispatcher_says_when_a_retry_falls_due(lender_a, receiver) -> None:
    endpoint_for(lender_a, receiver)
    signed_loan(lender_a)
    receiver.answers = [503]

    first = webhooks_dispatch(seconds=5)

    assert (first["delivered"], first["more"]) == (0, 0)
    assert 1 <= first["retry_in"] <= 7  # 5 s, with jitter
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert webhooks_dispatch(seconds=5)["delivered"] == 1
    assert webhooks_dispatch(seconds=5)["retry_in"] == 0  # nothing left to retry
