"""Drill 4: FCM answers 503 and 429 for a while, in the middle of a morning's locks and the
payments that lift some of them. Every phone (the reference simulator, checking in only when a
push reaches it) ends on its newest state, acknowledged; no nudge is given up.

The whole path is real: the sweep and payment services write states and nudges, a Celery
worker on Redis relays them through firebase-admin to the loopback FCM, the simulators pull
over HTTP from the live server and acknowledge."""

import threading
import time
from datetime import timedelta

import pytest
from django.db.models import Max
from django.utils import timezone
from rest_framework.throttling import ScopedRateThrottle

from apps.collections.models import Loan
from apps.collections.selectors import loan_next_due
from apps.collections.services import loan_stage_sweep, payment_record
from apps.core.actor import Actor
from apps.devices.models import Device, PushNudge
from apps.devices.services import enrollment_token_mint
from tests.collections.factories import noticed, signed_loan
from tests.devices.factories import phone_registered, valid_imei
from tests.drills.conftest import scale
from tests.waiting import wait_for
from tools.agent_sim import Agent

pytestmark = [pytest.mark.drill, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

PHONES = scale(12, 60)
OUTAGE_SECONDS = scale(4, 10)


@pytest.fixture
def phones(lender_a, live_server, settings, fake_fcm, monkeypatch):
    """Enrolled simulators listening for pushes; they check in by themselves only every
    10 minutes, so within the drill only a push that gets through makes them pull."""
    # a whole shop's worth of phones enrolling from one address within the minute
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "enroll", f"{PHONES}/min")
    settings.AGENT_API_BASE_URL = f"{live_server.url}/api/agent/v1/"
    agents = []
    for _ in range(PHONES):
        device = phone_registered(
            signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y"
        )
        token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
        agent = Agent(server=settings.AGENT_API_BASE_URL, token=token, imei=device.imei)
        agent.enroll()
        fake_fcm.subscribe(agent.fcm_token, agent.on_nudge)
        agents.append(agent)
    threads = [
        threading.Thread(target=agent.run, kwargs={"interval": 600.0}, daemon=True)
        for agent in agents
    ]
    for thread in threads:
        thread.start()
    wait_for(lambda: all(agent.phone.version == 1 for agent in agents))
    yield agents
    for agent in agents:
        agent.stopped.set()
        agent.nudged.set()
    for thread in threads:
        thread.join(timeout=10)


def test_an_fcm_outage_loses_no_state(
    lender_a, phones, fake_fcm, redis_worker, settings, report
) -> None:
    # Backoff of seconds, as in production's shape (5 s doubling to 15 min), so the outage
    # spans several attempts of each nudge without using up PUSH_MAX_ATTEMPTS.
    settings.PUSH_RETRY_BASE_SECONDS, settings.PUSH_RETRY_MAX_SECONDS = 0.5, 4.0
    loans = list(Loan.objects.filter(lender=lender_a).order_by("pk"))
    first_due = loans[0].installments.order_by("sequence").first().due_date
    for loan in loans:
        noticed(loan)  # told of the lock ahead

    fake_fcm.outage(OUTAGE_SECONDS, statuses=(503, 429))
    started = time.monotonic()
    swept = loan_stage_sweep(
        lender_id=lender_a.pk, business_date=first_due + timedelta(days=40), id_from=0, id_to=10**12
    )
    assert (swept.changes, swept.phones) == (PHONES, PHONES)
    time.sleep(OUTAGE_SECONDS / 2)
    paying = loans[::2]  # half the customers pay while FCM is still down: their lock lifts
    for loan in paying:
        payment_record(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            amount=loan_next_due(loan=loan).amount,
            channel="provider",
            provider="demo",
            provider_ref=f"outage-{loan.pk}",
            received_at=timezone.now(),
            actor=Actor.system(),
        )
    assert time.monotonic() < fake_fcm.outage_until, "the payments came after the outage"

    def all_acked() -> bool:
        devices = {d.pk: d for d in Device.objects.filter(lender=lender_a)}
        return all(
            devices[a.device_id].acked_version == devices[a.device_id].desired_version
            and a.phone.version == devices[a.device_id].desired_version
            for a in phones
        )

    wait_for(all_acked, timeout=OUTAGE_SECONDS + 60)
    settled = time.monotonic() - started
    # a nudge of a state the phone already pulled (another nudge woke it) is still sent or
    # superseded in the end: none is given up
    nudges = PushNudge.objects.filter(lender_id=lender_a.pk, version__gt=1)
    wait_for(lambda: not nudges.filter(status__in=["pending", "sending"]).exists(), timeout=60)

    paid = {loan.pk for loan in paying}
    levels = {a.device_id: a.phone.level for a in phones}
    loan_of = dict(Device.objects.filter(lender=lender_a).values_list("pk", "loan_id"))
    wrong = [
        d for d, level in levels.items() if level != ("normal" if loan_of[d] in paid else "lock")
    ]
    assert wrong == [], f"phones on the wrong level: {wrong}"
    assert all(a.refusals == [] for a in phones)
    statuses = set(nudges.values_list("status", flat=True))
    assert statuses <= {"sent", "superseded"}, f"nudges left {statuses}"
    most_attempts = nudges.aggregate(m=Max("attempts"))["m"]
    assert most_attempts > 1, "the outage was never felt"
    assert fake_fcm.refused.get(503)
    assert fake_fcm.refused.get(429)
    assert most_attempts < settings.PUSH_MAX_ATTEMPTS
    report(
        f"FCM outage: {PHONES} phones locked by the sweep, {len(paying)} of them paid during "
        f"{OUTAGE_SECONDS} s of FCM answering 503 x{fake_fcm.refused[503]} and 429 "
        f"x{fake_fcm.refused[429]}; nudges sent after up to {most_attempts} attempts; "
        f"{PHONES}/{PHONES} phones on their newest state and acknowledged {settled:.1f} s after "
        f"the sweep; lost 0"
    )
