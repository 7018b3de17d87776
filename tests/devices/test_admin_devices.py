"""The lender back office's view of phones: sync lag, the out-of-sync filter, the device page
and its delivery log, and the lender boundary around all of it."""

import json
from datetime import datetime, timedelta

import pytest
import time_machine
from django.contrib.admin import AdminSite
from django.contrib.admin.utils import display_for_value
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from apps.core.actor import Actor, ActorType
from apps.devices.admin import DeviceAdmin, duration_text
from apps.devices.models import Device, DeviceState, PushNudge
from apps.devices.services import device_ack, device_state_set
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:devices_device_changelist"


def change_url(device: Device) -> str:
    return reverse("admin:devices_device_change", args=[device.pk])


def ack(device: Device) -> None:
    device.refresh_from_db()
    device_ack(
        device_id=device.pk,
        version=device.desired_version,
        error_code="",
        actor=Actor(type=ActorType.DEVICE, id=str(device.pk)),
    )


def restrict(device: Device, level: str = DeviceState.Level.LOCK) -> None:
    device_state_set(device_id=device.pk, level=level, actor=Actor.system(), reason="Overdue.")


def phone_behind_since(lender, ago: timedelta, **kwargs) -> Device:
    """An enrolled phone that applied its first state and was sent a lock ``ago``, unacked."""
    with time_machine.travel(timezone.now() - ago - timedelta(minutes=5)):
        device, _, _ = enrolled_phone(lender, **kwargs)
        ack(device)
    with time_machine.travel(timezone.now() - ago):
        restrict(device)
    device.refresh_from_db()
    return device


def phone_in_sync(lender) -> Device:
    device, _, _ = enrolled_phone(lender)
    restrict(device)
    ack(device)
    device.refresh_from_db()
    return device


@pytest.fixture
def phones(lender_a):
    return {
        "two_hours": phone_behind_since(lender_a, timedelta(hours=2)),
        "ten_minutes": phone_behind_since(lender_a, timedelta(minutes=10)),
        "in_sync": phone_in_sync(lender_a),
    }


@pytest.fixture
def agent_a_client(lender_a, make_agent, verified_client):
    return verified_client(make_agent(lender_a))


def listed(response) -> dict[int, Device]:
    assert response.status_code == 200
    return {device.pk: device for device in response.context["cl"].result_list}


def test_lag_is_shown_for_phones_behind_and_in_sync_for_the_rest(phones, agent_a_client) -> None:
    response = agent_a_client.get(reverse(CHANGELIST))
    rows = listed(response)
    assert set(rows) == {d.pk for d in phones.values()}
    two_hours = rows[phones["two_hours"].pk].sync_lag
    assert timedelta(hours=2) <= two_hours < timedelta(hours=2, minutes=1)
    assert rows[phones["in_sync"].pk].sync_lag is None
    html = response.content.decode()
    assert "2 h 0 min behind" in html
    assert "10 min behind" in html
    assert "in sync" in html


def test_out_of_sync_filter_lists_only_phones_behind_longer_than_the_choice(
    phones, agent_a_client
) -> None:
    over_an_hour = listed(agent_a_client.get(reverse(CHANGELIST), {"behind": "1"}))
    assert set(over_an_hour) == {phones["two_hours"].pk}
    over_six_hours = listed(agent_a_client.get(reverse(CHANGELIST), {"behind": "6"}))
    assert set(over_six_hours) == set()


def test_out_of_sync_filter_counts_a_phone_as_behind_until_it_acks(phones, agent_a_client) -> None:
    ack(phones["two_hours"])
    assert listed(agent_a_client.get(reverse(CHANGELIST), {"behind": "1"})) == {}


def test_sorting_by_lag_puts_the_phone_furthest_behind_first_and_in_sync_last(
    phones, agent_a_client
) -> None:
    column = DeviceAdmin.list_display.index("lag")
    descending = agent_a_client.get(reverse(CHANGELIST), {"o": f"-{column}"})
    order = [d.pk for d in descending.context["cl"].result_list]
    assert order == [phones[k].pk for k in ("two_hours", "ten_minutes", "in_sync")]
    ascending = agent_a_client.get(reverse(CHANGELIST), {"o": str(column)})
    assert [d.pk for d in ascending.context["cl"].result_list] == order[::-1]


def test_dead_push_address_shows_sms_fallback(lender_a, agent_a_client) -> None:
    alive, _, _ = enrolled_phone(lender_a, fcm_token="tok-alive")
    dead, _, _ = enrolled_phone(lender_a, fcm_token="tok-dead")
    Device.objects.filter(pk=dead.pk).update(fcm_token_dead_at=timezone.now())
    response = agent_a_client.get(reverse(CHANGELIST))
    assert response.content.decode().count("SMS fallback") == 1
    page = agent_a_client.get(change_url(dead)).content.decode()
    assert "FCM registration token: dead since" in page
    assert "SMS fallback" in page
    page = agent_a_client.get(change_url(alive)).content.decode()
    assert "FCM registration token: alive" in page
    assert "SMS fallback" not in page


def test_device_page_shows_the_desired_state_and_delivery_log_but_no_secrets(
    lender_a, agent_a_client
) -> None:
    token = "fcm-raw-registration-token-0123456789"
    device = phone_behind_since(lender_a, timedelta(hours=3), fcm_token=token)
    state = DeviceState.objects.get(device=device, version=device.desired_version)

    response = agent_a_client.get(change_url(device))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<div class="readonly">Locked</div>' in page  # the current level
    assert "3 h 0 min behind" in page
    valid_until = datetime.fromisoformat(state.document["valid_until"])
    assert f'<div class="readonly">{display_for_value(valid_until, "-")}</div>' in page
    pretty = json.dumps(state.document, indent=2, sort_keys=True, ensure_ascii=False)
    assert pretty.replace('"', "&quot;") in page
    assert "FCM registration token: alive" in page
    assert token not in page
    assert device.credential_hash
    assert device.credential_hash not in page
    assert 'name="fcm_token"' not in page

    nudges = {f.instance.pk for f in response.context["inline_admin_formsets"][2].formset.forms}
    assert nudges == set(PushNudge.objects.filter(device=device).values_list("pk", flat=True))
    assert len(nudges) == 2  # the enrollment's state and the lock
    assert "Delivery log" in page
    assert "Waiting to be sent" in page


def test_device_page_inlines_show_the_newest_twenty_states(lender_a, agent_a_client) -> None:
    device, _, _ = enrolled_phone(lender_a)
    for _ in range(21):
        restrict(device, DeviceState.Level.REMINDER)
    response = agent_a_client.get(change_url(device))
    states = response.context["inline_admin_formsets"][0].formset
    versions = [form.instance.version for form in states.forms]
    assert versions == list(range(22, 2, -1))


def test_agent_of_b_neither_lists_nor_opens_devices_of_a(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    theirs = phone_behind_since(lender_a, timedelta(hours=2))
    mine, _, _ = enrolled_phone(lender_b)
    client = verified_client(make_agent(lender_b))

    assert set(listed(client.get(reverse(CHANGELIST)))) == {mine.pk}
    assert set(listed(client.get(reverse(CHANGELIST), {"behind": "1"}))) == set()
    assert client.get(change_url(theirs)).status_code == 404
    assert client.get(change_url(mine)).status_code == 200


def test_delivery_log_and_signing_keys_are_listed_read_only_per_lender(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    from apps.devices.services import lender_signing_key_rotate

    mine, _, _ = enrolled_phone(lender_a, fcm_token="tok-a")
    theirs, _, _ = enrolled_phone(lender_b, fcm_token="tok-b")
    key_a = lender_signing_key_rotate(lender_id=lender_a.pk, actor=Actor.system(), reason="Drill.")
    lender_signing_key_rotate(lender_id=lender_b.pk, actor=Actor.system(), reason="Drill.")
    client = verified_client(make_agent(lender_a))

    log = client.get(reverse("admin:devices_pushnudge_changelist"), {"q": mine.imei})
    assert {n.device_id for n in listed(log).values()} == {mine.pk}
    assert (
        listed(client.get(reverse("admin:devices_pushnudge_changelist"), {"q": theirs.imei})) == {}
    )
    assert "Push delivery log" in log.content.decode()
    keys = client.get(reverse("admin:devices_lenderkey_changelist"))
    assert set(listed(keys)) == {key_a.pk}
    assert "Lender signing keys" in keys.content.decode()


@pytest.mark.parametrize(
    ("lag", "text"),
    [
        (timedelta(seconds=30), "under a minute"),
        (timedelta(minutes=10, seconds=59), "10 min"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(days=2, hours=3, minutes=4), "2 d 3 h"),
    ],
)
def test_lag_reads_in_coarse_units(lag, text) -> None:
    assert duration_text(lag) == text


def test_lag_and_push_columns_read_in_the_agents_language(lender_a) -> None:
    device, _, _ = enrolled_phone(lender_a, fcm_token="tok")
    device.sync_lag = timedelta(hours=2, minutes=5)
    admin = DeviceAdmin(Device, AdminSite())
    with translation.override("es"):
        assert duration_text(timedelta(seconds=30)) == "menos de un minuto"
        assert admin.lag(device) == "2 h 5 min de retraso"
    with translation.override("zh-hans"):
        assert admin.lag(device) == "落后 2 小时 5 分钟"
        assert admin.push(device) == "推送"


def test_changelist_queries_do_not_grow_with_the_number_of_phones(lender_a, agent_a_client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert agent_a_client.get(reverse(CHANGELIST)).status_code == 200
        return len(captured.captured_queries)

    phone_behind_since(lender_a, timedelta(hours=2))
    one = queries()
    phone_behind_since(lender_a, timedelta(hours=2))
    phone_in_sync(lender_a)
    assert queries() == one
