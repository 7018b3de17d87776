"""An agent finds the phone that has not acked its lock in the back office, in headless Chromium:
the Devices list, the "out of sync for" filter in the sidebar, then the phone's own page."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.core.actor import Actor, ActorType
from apps.devices.models import Device, PushNudge
from apps.devices.services import device_ack, device_state_set
from tests.browser.conftest import admin_log_in, save_screenshot
from tests.devices.factories import enrolled_phone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The lock was sent 3 hours before the test; the browser steps take seconds, not minutes.
THREE_HOURS_BEHIND = re.compile(r"^3 h [0-4] min behind$")


def ack(device: Device) -> None:
    device.refresh_from_db()
    device_ack(
        device_id=device.pk,
        version=device.desired_version,
        error_code="",
        actor=Actor(type=ActorType.DEVICE, id=str(device.pk)),
    )


def test_agent_filters_out_of_sync_phones_and_opens_the_one_behind(
    live_server, page, lender_a, make_agent
) -> None:
    agent = make_agent(lender_a, username="wanjiku")
    in_sync, _, _ = enrolled_phone(lender_a, fcm_token="tok-in-sync")
    ack(in_sync)
    three_hours_ago = timezone.now() - timedelta(hours=3)
    with time_machine.travel(three_hours_ago - timedelta(minutes=5)):
        behind, _, _ = enrolled_phone(lender_a, fcm_token="tok-behind")
        ack(behind)
    with time_machine.travel(three_hours_ago):
        device_state_set(
            device_id=behind.pk,
            level="lock",
            actor=Actor.system(),
            reason="Two instalments overdue.",
        )
    # The factory's phones are "X Y"; name them as a shop would, for the screenshots.
    Device.objects.filter(pk=in_sync.pk).update(brand="Samsung", model_name="Galaxy A15")
    Device.objects.filter(pk=behind.pk).update(brand="Tecno", model_name="Spark 20")
    behind.refresh_from_db()
    assert behind.acked_version < behind.desired_version

    # The list has twelve columns: at the other tests' 1100 px the lag column scrolls out of
    # sight in the screenshot, so widen the window and fold the app menu away.
    page.set_viewport_size({"width": 1440, "height": 900})
    admin_log_in(page, f"{live_server.url}/admin/devices/device/", agent)
    page.wait_for_selector("#result_list")
    assert page.url.endswith("/admin/devices/device/")
    page.click("#toggle-nav-sidebar")

    def lag_by_imei() -> dict[str, str]:
        rows = page.locator("#result_list tbody tr")
        return {
            rows.nth(i).locator(".field-imei").inner_text().strip(): rows.nth(i)
            .locator(".field-lag")
            .inner_text()
            .strip()
            for i in range(rows.count())
        }

    lags = lag_by_imei()
    assert set(lags) == {in_sync.imei, behind.imei}
    assert lags[in_sync.imei] == "in sync"
    assert THREE_HOURS_BEHIND.match(lags[behind.imei]), lags

    out_of_sync = page.locator('#changelist-filter details[data-filter-title="out of sync for"]')
    out_of_sync.get_by_role("link", name="More than 1 hour", exact=True).click()
    page.wait_for_url(re.compile(r"[?&]behind=1(&|$)"))
    assert out_of_sync.locator("li.selected").inner_text().strip() == "More than 1 hour"
    lags = lag_by_imei()
    assert list(lags) == [behind.imei]
    assert THREE_HOURS_BEHIND.match(lags[behind.imei]), lags
    save_screenshot(page, "admin-devices-out-of-sync")

    page.locator("#result_list .field-imei a", has_text=behind.imei).click()
    page.wait_for_url(re.compile(rf"/admin/devices/device/{behind.pk}/change/"))
    assert page.locator(".field-imei .readonly").inner_text().strip() == behind.imei
    assert page.locator(".field-state_level .readonly").inner_text().strip() == "Locked"
    assert page.locator(".field-desired_version .readonly").inner_text().strip() == str(
        behind.desired_version
    )
    assert '"level": "lock"' in page.locator("pre.desired-document").inner_text()
    assert THREE_HOURS_BEHIND.match(page.locator(".field-lag .readonly").inner_text().strip())

    log = page.locator("#nudges-group")
    assert log.locator("h2").text_content().strip() == "Delivery log (latest 20 pushes)"
    versions = [v.strip() for v in log.locator("tbody tr td.field-version").all_inner_texts()]
    expected = PushNudge.objects.filter(device=behind).order_by("-created_at", "-id")
    assert versions == [str(n.version) for n in expected]
    assert versions[0] == str(behind.desired_version)  # the lock's push, newest first
    statuses = [s.strip() for s in log.locator("tbody tr td.field-status").all_inner_texts()]
    assert statuses == [n.get_status_display() for n in expected]
    assert statuses[0] == "Sent"  # tasks run eagerly; the logging gateway reports it sent
    save_screenshot(page, "admin-device-detail")
