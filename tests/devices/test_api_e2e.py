"""End to end: the reference agent simulator, over HTTP, against the live server, a real
Celery worker on Redis, and firebase-admin talking to the loopback FCM."""

import base64
import copy
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.actor import Actor
from apps.devices.desired_state import canonical
from apps.devices.keys import lender_signing_key
from apps.devices.models import Device, PushNudge
from apps.devices.provisioning import provisioning_qr_png
from apps.devices.services import (
    device_release,
    device_state_set,
    enrollment_token_mint,
)
from tests.collections.factories import signed_loan
from tests.devices.factories import phone_registered, valid_imei
from tests.waiting import wait_for
from tools.agent_sim import Agent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]


@pytest.fixture
def sold_phone(lender_a, live_server, settings):
    """A phone sold at the counter: its device record and the QR code the clerk shows."""
    settings.AGENT_API_BASE_URL = f"{live_server.url}/api/agent/v1/"
    device = phone_registered(
        signed_loan(lender_a), imei=valid_imei(), brand="Tecno", model_name="Spark 20"
    )
    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    return device, provisioning_qr_png(minted.payload)


@pytest.fixture
def running_agent(sold_phone, fake_fcm):
    """The simulator enrolled from the QR image, listening for pushes, checking in rarely."""
    device, png = sold_phone
    agent = Agent.from_qr(png, imei=device.imei)
    agent.enroll()
    fake_fcm.subscribe(agent.fcm_token, agent.on_nudge)
    agent.interval = 60.0
    thread = threading.Thread(target=lambda: agent.run(interval=agent.interval), daemon=True)
    thread.start()
    yield agent
    agent.stopped.set()
    agent.nudged.set()
    thread.join(timeout=10)


def set_state(device: Device, level: str, **content) -> int:
    return device_state_set(
        device_id=device.pk, level=level, actor=Actor.system(), reason="Test.", **content
    ).version


def test_a_phone_enrolls_from_the_qr_code_is_restricted_unlocked_and_released(
    redis_worker, running_agent, fake_fcm
) -> None:
    agent = running_agent
    device = Device.objects.get(pk=agent.device_id)
    wait_for(lambda: agent.phone.version == 1)  # the first check-in pulled the enrollment state
    fake_fcm.fail_next(429)  # FCM's quota answer once: the relay retries after a backoff

    version = set_state(device, "block_apps", blocked_categories=["social"])
    wait_for(lambda: agent.phone.version == version)
    assert (agent.phone.level, agent.phone.blocked_categories) == ("block_apps", ["social"])
    version = set_state(device, "lock", lock_screen_text="Pay 1,200 KES to unlock.")
    wait_for(lambda: agent.phone.version == version)
    assert agent.phone.level == "lock"
    assert "com.android.phone" in agent.phone.always_allowed_packages  # emergency calls work
    version = set_state(device, "normal")
    wait_for(lambda: agent.phone.version == version)
    assert agent.phone.level == "normal"

    device_release(device_id=device.pk, actor=Actor.system(), reason="Paid off.")
    wait_for(lambda: agent.stopped.is_set())
    assert agent.phone.released
    device.refresh_from_db()
    assert (device.status, device.acked_version) == (Device.Status.RELEASED, version + 1)
    assert fake_fcm.refused == {429: 1}
    assert agent.refusals == []
    # every state change was pushed and acknowledged: the phone never had to wait for an interval
    assert [lvl for _, lvl in agent.phone.history] == [
        "normal",
        "block_apps",
        "lock",
        "normal",
        "released",
    ]


def test_a_push_lost_on_the_way_is_healed_by_the_next_check_in(
    redis_worker, sold_phone, fake_fcm
) -> None:
    device, png = sold_phone
    agent = Agent.from_qr(png, imei=device.imei)
    agent.enroll()
    fake_fcm.subscribe(agent.fcm_token, agent.on_nudge)
    fake_fcm.lose.add(agent.fcm_token)  # FCM accepts the message and never delivers it
    thread = threading.Thread(target=lambda: agent.run(interval=1.0), daemon=True)
    thread.start()
    try:
        version = set_state(device, "lock")
        wait_for(
            lambda: PushNudge.objects.filter(device=device, version=version, status="sent").exists()
        )
        wait_for(lambda: agent.phone.version == version)  # the interval's check-in
        assert agent.phone.level == "lock"
        assert fake_fcm.delivered == []
        wait_for(lambda: Device.objects.get(pk=device.pk).acked_version == version)
    finally:
        agent.stopped.set()
        agent.nudged.set()
        thread.join(timeout=10)


def test_the_agent_refuses_foreign_tampered_replayed_expired_and_unsigned_states(
    sold_phone, lender_b
) -> None:
    device, png = sold_phone
    now = [None]
    agent = Agent.from_qr(png, imei=device.imei, clock=lambda: now[0] or timezone.now())
    agent.enroll()
    agent.check_in()
    set_state(device, "lock")
    state = agent.http.post(
        f"{agent.server}check-in",
        json={"version": 1},
        headers={"Authorization": f"Device {agent.device_id}:{agent.secret}"},
    ).json()["state"]

    foreign = copy.deepcopy(state)  # the same document, signed by another lender's key
    foreign["signature"] = base64.b64encode(
        lender_signing_key(lender_slug=lender_b.slug, version=1).sign(
            canonical(foreign["document"])
        )
    ).decode()
    tampered = copy.deepcopy(state)
    tampered["document"]["level"] = "normal"
    unsigned = {"document": state["document"]}
    assert [agent.receive(s) for s in (foreign, tampered, unsigned)] == [
        "refused:bad_signature",
        "refused:bad_signature",
        "refused:unsigned",
    ]

    now[0] = timezone.now() + timedelta(days=8)  # past the seven-day lease
    assert agent.receive(state) == "refused:expired"
    device.refresh_from_db()
    assert device.last_ack_error == "2:expired"  # the lender sees why the phone did not apply it
    now[0] = None
    assert agent.receive(state) == "lock"  # the genuine state, in time
    assert agent.receive(state) == "refused:replayed"  # and never twice
    assert agent.phone.history == [(1, "normal"), (2, "lock")]
    device.refresh_from_db()
    assert (device.acked_version, device.last_ack_error) == (2, "")


def test_a_locked_phone_unlocks_within_seconds_of_a_paid_webhook(
    redis_worker, running_agent, fake_fcm, lender_a, live_server
) -> None:
    import requests as http

    from apps.collections.models import Loan
    from apps.collections.services import loan_stage_sweep
    from tests.collections.factories import noticed
    from tests.collections.webhooks import URL, event, headers

    agent = running_agent
    wait_for(lambda: agent.phone.version == 1)
    loan = Loan.objects.get(devices__pk=agent.device_id)
    first = loan.installments.order_by("sequence").first()
    noticed(loan)  # told of the lock ahead
    # 40 days late: the morning sweep locks the phone
    loan_stage_sweep(
        lender_id=lender_a.pk,
        business_date=first.due_date + timedelta(days=40),
        id_from=0,
        id_to=10**12,
    )
    wait_for(lambda: agent.phone.level == "lock")
    # the customer pays the overdue installment: the provider calls the real webhook
    body = event(loan.reference, str(first.total_due), "MP-e2e")
    sent_at = time.monotonic()
    response = http.post(
        f"{live_server.url}{URL}",
        data=body,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            **{
                k.removeprefix("HTTP_").replace("_", "-"): v
                for k, v in headers(lender_a, body).items()
            },
        },
    )
    assert response.status_code == 200, response.text
    wait_for(lambda: agent.phone.level == "normal", timeout=10)
    assert time.monotonic() - sent_at < 5  # seconds, not tomorrow's sweep
    assert [level for _, level in agent.phone.history] == ["normal", "lock", "normal"]
