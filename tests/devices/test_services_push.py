"""The push outbox and relay, through firebase-admin's real HTTP path to a loopback FCM."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.devices.models import Device, PushNudge
from apps.devices.services import (
    device_fcm_token_set,
    device_state_set,
    push_nudges_enqueue,
    push_relay_run,
)
from apps.devices.services.push import push_next_due_in, push_relay
from apps.devices.sql import PUSH_NUDGES_CLAIM
from apps.integrations.push.base import get_push_gateway
from tests.devices.factories import enrolled_phone, valid_imei

pytestmark = pytest.mark.django_db

S = PushNudge.Status


def drain(gateway=None, rounds: int = 100) -> None:
    """Run the relay until no nudge waits (test settings make retries wait milliseconds)."""
    for _ in range(rounds):
        push_relay_run(gateway=gateway or get_push_gateway(), time_budget=10)
        due = push_next_due_in()
        if due is None:
            return
        time.sleep(due)
    raise AssertionError("nudges still pending")


def restrict(device: Device, level: str = "lock") -> None:
    device_state_set(device_id=device.pk, level=level, actor=Actor.system(), reason="Overdue.")


def test_a_state_change_sends_one_data_only_high_priority_collapsing_nudge(fake_fcm, lender_a):
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-1")
    restrict(device)  # version 2; the enrollment's version 1 nudge is still waiting
    drain()
    assert fake_fcm.delivered == [
        {
            "token": "tok-1",
            "data": {"type": "sync", "version": "2"},
            "android": {"priority": "high", "ttl": "86400s", "collapse_key": "sync"},
        }
    ]
    log = {n.version: n for n in PushNudge.objects.filter(device=device)}
    assert (log[1].status, log[2].status) == (S.SUPERSEDED, S.SENT)
    assert log[2].message_id.startswith("projects/smartcollection-test/messages/")
    assert (log[2].attempts, log[2].error_code, log[2].sent_at is not None) == (1, "", True)


def test_quota_and_unavailable_answers_are_retried_until_every_message_is_delivered(
    fake_fcm, lender_a
):
    phones = [enrolled_phone(lender_a, fcm_token=f"tok-{i}")[0] for i in range(3)]
    fake_fcm.fail_next(429, 2)
    fake_fcm.fail_next(503, 2)
    drain()
    assert fake_fcm.refused == {429: 2, 503: 2}
    assert sorted(m["token"] for m in fake_fcm.delivered) == ["tok-0", "tok-1", "tok-2"]
    nudges = PushNudge.objects.filter(device__in=phones)
    assert {n.status for n in nudges} == {S.SENT}
    assert sum(n.attempts for n in nudges) == 3 + 4  # one attempt each, plus one per refusal


def test_an_unregistered_token_is_marked_dead_for_sms_fallback_and_a_new_token_revives_it(
    fake_fcm, lender_a
):
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-gone")
    fake_fcm.unregistered.add("tok-gone")
    drain()
    nudge = PushNudge.objects.get(device=device)
    assert (nudge.status, nudge.error_code) == (S.DEAD, "unregistered")
    device.refresh_from_db()
    assert device.fcm_token_dead_at is not None
    event = AuditEvent.objects.get(action="devices.device.fcm_token_dead")
    assert (event.target_id, event.data) == (str(device.pk), {"fallback": "sms"})

    restrict(device)  # a dead address is not tried again
    drain()
    assert PushNudge.objects.get(device=device, version=2).error_code == "no_push_address"
    assert fake_fcm.refused == {404: 1}

    device_fcm_token_set(device_id=device.pk, fcm_token="tok-new", actor=Actor.system())
    restrict(device, "block_apps")
    drain()
    assert [m["token"] for m in fake_fcm.delivered] == ["tok-new"]


def test_the_booked_follow_up_books_the_next_one_while_retries_are_due(
    fake_fcm, lender_a, settings
):
    settings.PUSH_RETRY_BASE_SECONDS = (
        20  # retries due in 10-20 s, then 20-40 s: both within the minute
    )
    enrolled_phone(lender_a, fcm_token="tok-1")
    fake_fcm.fail_next(503, 2)
    gateway = get_push_gateway()

    def retry_falls_due() -> None:  # the clock moved on to the retry
        PushNudge.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    first = push_relay(gateway=gateway)
    assert first is not None  # the retry falls due within the minute: a follow-up is booked
    assert push_relay(gateway=gateway) is None  # a kick meanwhile books no second chain
    assert fake_fcm.refused == {503: 1}  # and attempts nothing: the retry is not due
    retry_falls_due()
    second = push_relay(gateway=gateway, follow_up=True)  # refused again: it books the next
    assert second is not None
    retry_falls_due()
    assert push_relay(gateway=gateway, follow_up=True) is None  # sent: nothing waits
    assert [m["token"] for m in fake_fcm.delivered] == ["tok-1"]


def test_a_nudge_refused_on_every_attempt_ends_failed_after_the_last_one(
    fake_fcm, lender_a, settings
):
    settings.PUSH_MAX_ATTEMPTS = 3
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-1")
    fake_fcm.fail_next(503, 10)
    drain()
    nudge = PushNudge.objects.get(device=device)
    assert (nudge.status, nudge.attempts, nudge.error_code) == (S.FAILED, 3, "unavailable")
    assert fake_fcm.delivered == []


def test_more_than_500_nudges_go_out_in_batches_of_at_most_500(fake_fcm, lender_a):
    device, _, _ = enrolled_phone(lender_a)
    Device.objects.bulk_create(
        Device(
            lender=lender_a,
            loan=device.loan,
            imei=valid_imei(),
            brand="X",
            model_name="Y",
            status=Device.Status.RELEASED,
            fcm_token=f"tok-{i}",
        )
        for i in range(1050)
    )
    ids = list(Device.objects.filter(status=Device.Status.RELEASED).values_list("pk", flat=True))
    push_nudges_enqueue(nudges=[(lender_a.pk, pk, 1) for pk in ids])
    sizes = []
    real = get_push_gateway()

    class Counting:
        def send(self, messages):
            sizes.append(len(messages))
            return real.send(messages)

    drain(Counting())
    # 1,051 nudges (the enrolled phone's has no address) in three claims of at most 500
    assert (len(sizes), max(sizes), sum(sizes)) == (3, 500, 1050)
    assert fake_fcm.accepted == 1050
    assert PushNudge.objects.filter(status=S.SENT).count() == 1050


def test_nudges_claimed_by_a_relay_that_died_are_sent_by_the_next_one(fake_fcm, lender_a, settings):
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-1")
    with connection.cursor() as cursor:  # a relay claims the nudge, then its worker is killed
        cursor.execute(PUSH_NUDGES_CLAIM, [settings.PUSH_CLAIM_TIMEOUT_SECONDS, 500])
    drain()
    assert fake_fcm.delivered == []  # not yet: the claim is fresh
    settings.PUSH_CLAIM_TIMEOUT_SECONDS = 0
    push_relay_run(gateway=get_push_gateway())
    nudge = PushNudge.objects.get(device=device)
    assert (nudge.status, nudge.attempts) == (S.SENT, 2)
    assert len(fake_fcm.delivered) == 1


def test_a_release_is_pushed_again_until_the_phone_acks_it(lender_a, settings) -> None:
    from apps.devices.services import device_ack, device_release
    from apps.devices.services.push import push_release_renudge

    settings.PUSH_RELEASE_RENUDGE_SECONDS = 0  # due again at once, for the test
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-1")
    state = device_release(device_id=device.pk, actor=Actor.system(), reason="Paid off.")
    assert push_release_renudge() == 0  # its first push is still waiting
    PushNudge.objects.filter(device=device).update(status=S.SENT)
    assert push_release_renudge() == 1
    assert push_release_renudge() == 0  # that one waits now
    PushNudge.objects.filter(device=device).update(status=S.SENT)
    device_ack(device_id=device.pk, version=state.version, error_code="", actor=Actor.system())
    assert push_release_renudge() == 0  # acknowledged: done for good
    assert PushNudge.objects.filter(device=device, version=state.version).count() == 2
