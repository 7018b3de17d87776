"""What heals a phone that lost an ack, slept past its lease, or crossed a key rotation."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.core.actor import Actor
from apps.devices.errors import DeviceReleased
from apps.devices.models import Device, DeviceState, PushNudge
from apps.devices.services import (
    device_ack,
    device_check_in,
    device_fcm_token_set,
    device_key_announce,
    device_release,
    device_state_set,
    lender_signing_key_rotate,
    push_relay_run,
)
from apps.devices.services.push import push_release_renudge
from apps.devices.sql import PUSH_NUDGES_CLAIM
from apps.integrations.push.base import get_push_gateway
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


def check_in(device: Device, applied: int):
    return device_check_in(
        device_id=device.pk,
        applied_version=applied,
        agent_version="1",
        battery_percent=50,
        iccid_sha256="",
        ip=None,
    )


def test_a_lost_ack_is_recovered_from_the_version_the_phone_reports(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    state = device_release(device_id=device.pk, actor=Actor.system(), reason="Paid off.")
    # the phone applied the release; its ack never arrived. Its next check-in says so:
    assert check_in(device, state.version).state is None
    device.refresh_from_db()
    assert (device.status, device.acked_version) == (Device.Status.RELEASED, state.version)
    with pytest.raises(DeviceReleased):  # and from then on it is free: 410
        check_in(device, state.version)


def test_a_phone_away_past_its_lease_gets_its_state_with_a_fresh_lease(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    with time_machine.travel(timezone.now() - timedelta(days=9)):
        old = device_state_set(
            device_id=device.pk, level="lock", actor=Actor.system(), reason="Late."
        )
    served = check_in(device, 1).state
    assert served.document["level"] == "lock"
    assert served.document["version"] == old.version + 1  # re-issued, same content
    assert served.document["lock_screen_text"] == old.document["lock_screen_text"]
    from datetime import datetime

    assert datetime.fromisoformat(served.document["valid_until"]) > timezone.now() + timedelta(
        days=6
    )


def test_a_current_phone_checking_in_as_its_lease_ends_gets_a_fresh_lease(lender_a) -> None:
    """The lease's fallback is for a phone that cannot check in: one that does, and is
    current, never lapses to it."""
    from datetime import datetime

    device, _, _ = enrolled_phone(lender_a)
    state = device_state_set(
        device_id=device.pk, level="block_apps", actor=Actor.system(), reason="Late."
    )
    device_ack(device_id=device.pk, version=state.version, error_code="", actor=Actor.system())
    assert check_in(device, state.version).state is None  # current, its lease long: the fast path
    with time_machine.travel(timezone.now() + timedelta(days=6, hours=12)):
        served = check_in(device, state.version).state
        assert served is not None
        assert served.document["version"] == state.version + 1  # re-issued, same content
        assert served.document["level"] == "block_apps"
        lease = datetime.fromisoformat(served.document["valid_until"])
        assert lease > timezone.now() + timedelta(days=6)
        device_ack(
            device_id=device.pk,
            version=served.document["version"],
            error_code="",
            actor=Actor.system(),
        )
        assert check_in(device, state.version + 1).state is None


def test_an_expired_refusal_gets_the_state_reissued(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    device_ack(device_id=device.pk, version=1, error_code="expired", actor=Actor.system())
    device.refresh_from_db()
    assert device.desired_version == 2
    assert DeviceState.objects.get(device=device, version=2).level == "normal"


def test_a_release_written_during_a_key_rotation_is_reissued_under_the_new_key(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a)
    lender_signing_key_rotate(lender_id=lender_a.pk, actor=Actor.system(), reason="Yearly.")
    device_key_announce(lender_id=lender_a.pk)  # v2: normal, announcing key 2 under key 1
    device_release(device_id=device.pk, actor=Actor.system(), reason="Paid off.")  # v3, key 1
    device_ack(device_id=device.pk, version=2, error_code="", actor=Actor.system())
    device.refresh_from_db()
    newest = DeviceState.objects.get(device=device, version=device.desired_version)
    assert (device.key_version, newest.version, newest.level, newest.key_version) == (
        2,
        4,
        "released",
        2,
    )


def test_a_stale_relay_cannot_overwrite_the_claim_of_the_relay_that_reclaimed(
    lender_a, settings
) -> None:
    from apps.devices.services.push import _record

    enrolled_phone(lender_a, fcm_token="tok-1")
    with connection.cursor() as cursor:  # relay A claims, then stalls past the claim timeout
        cursor.execute(PUSH_NUDGES_CLAIM, [settings.PUSH_CLAIM_TIMEOUT_SECONDS, 500])
        (nudge_id, _, _, a_attempts) = cursor.fetchone()
        cursor.execute(PUSH_NUDGES_CLAIM, [0, 500])  # relay B reclaims it and is sending now
        (_, _, _, b_attempts) = cursor.fetchone()
    _record(
        outcomes={nudge_id: ("failed", "", "unavailable", 0.0)},
        claims={nudge_id: a_attempts},
        dead=[],
    )
    nudge = PushNudge.objects.get(pk=nudge_id)
    assert (nudge.status, nudge.attempts) == ("sending", b_attempts)  # B's claim stands
    _record(outcomes={nudge_id: ("sent", "m-1", "", 0.0)}, claims={nudge_id: b_attempts}, dead=[])
    assert PushNudge.objects.get(pk=nudge_id).status == "sent"


def test_a_token_replaced_while_its_push_failed_is_not_marked_dead(fake_fcm, lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-old")
    fake_fcm.unregistered.add("tok-old")
    real = get_push_gateway()

    class PhoneReportsNewTokenMeanwhile:
        def send(self, messages):
            results = real.send(messages)
            device_fcm_token_set(device_id=device.pk, fcm_token="tok-new", actor=Actor.system())
            return results

    push_relay_run(gateway=PhoneReportsNewTokenMeanwhile())
    device.refresh_from_db()
    assert (device.fcm_token, device.fcm_token_dead_at) == ("tok-new", None)


def test_a_release_is_pushed_again_only_after_its_backoff(lender_a, settings) -> None:
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok-1")
    device_release(device_id=device.pk, actor=Actor.system(), reason="Paid off.")
    PushNudge.objects.filter(device=device).update(status="sent")
    settings.PUSH_RELEASE_RENUDGE_SECONDS = 3600
    assert push_release_renudge() == 0  # pushed a moment ago: not yet
    settings.PUSH_RELEASE_RENUDGE_SECONDS = 0
    assert push_release_renudge() == 1
    Device.objects.filter(pk=device.pk).update(fcm_token_dead_at=timezone.now())
    PushNudge.objects.filter(device=device).update(status="sent")
    assert push_release_renudge() == 0  # no live address: the phone's own check-ins will do
