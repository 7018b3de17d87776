"""The simulator's command line and the demo's enrollment codes; per-phone throttling."""

import json
import socket
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from rest_framework.throttling import ScopedRateThrottle

from apps.devices.models import Device
from tests.collections.factories import signed_loan
from tests.devices.factories import enrolled_phone, phone_registered, valid_imei
from tools.agent_sim.agent import read_qr


@pytest.mark.django_db
def test_demo_codes_are_decodable_qr_images_and_refused_outside_the_demo(
    lender_a, tmp_path, settings, capsys
) -> None:
    device = phone_registered(signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y")
    call_command("demo_enrollment_codes", "--out", str(tmp_path))
    imei, png = capsys.readouterr().out.split()
    assert imei == device.imei
    extras = read_qr(png)["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert extras["server"] == settings.AGENT_API_BASE_URL
    assert len(extras["token"]) == 22  # 128 random bits
    settings.DEMO_SEED_ALLOWED = False
    with pytest.raises(CommandError, match="Demo only"):
        call_command("demo_enrollment_codes", "--out", str(tmp_path))


def sim_enrolled_by_qr(lender, live_server, settings, tmp_path):
    """A phone sold and its demo QR code, scanned by the command-line simulator (``--once``,
    keeping itself in ``phone.json``): (device, keep file, the command, its run)."""
    settings.AGENT_API_BASE_URL = f"{live_server.url}/api/agent/v1/"
    device = phone_registered(signed_loan(lender), imei=valid_imei(), brand="X", model_name="Y")
    call_command("demo_enrollment_codes", "--out", str(tmp_path))
    keep = tmp_path / "phone.json"
    sim = [sys.executable, "-m", "tools.agent_sim", "--once", "--keep", str(keep)]
    run = subprocess.run(
        [*sim, "--qr", str(tmp_path / f"{device.imei}.png"), "--imei", device.imei],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return device, keep, sim, run


@pytest.mark.django_db(transaction=True)
def test_the_command_line_simulator_enrolls_once_and_resumes_from_what_it_kept(
    lender_a, live_server, settings, tmp_path
) -> None:
    device, keep, sim, first = sim_enrolled_by_qr(lender_a, live_server, settings, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "v1 normal"
    assert json.loads(keep.read_text())["device_id"] == device.pk
    assert keep.stat().st_mode & 0o077 == 0  # the device secret is the phone's alone
    again = subprocess.run(sim, capture_output=True, text=True, timeout=60)  # no QR: resumes
    assert again.returncode == 0, again.stderr
    device.refresh_from_db()
    assert (device.status, device.acked_version) == (Device.Status.ENROLLED, 1)


@pytest.mark.django_db(transaction=True)
def test_a_resumed_phone_calls_the_server_it_is_given_when_the_demo_moved(
    lender_a, live_server, settings, tmp_path
) -> None:
    device, keep, sim, enrolled = sim_enrolled_by_qr(lender_a, live_server, settings, tmp_path)
    assert enrolled.returncode == 0, enrolled.stderr
    # the saved address is the last run's, on a port where nothing listens any more
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}/api/agent/v1/"
    keep.write_text(json.dumps({**json.loads(keep.read_text()), "server": gone}))
    before = Device.objects.get(pk=device.pk).last_seen_at
    resumed = subprocess.run(
        [*sim, "--server", settings.AGENT_API_BASE_URL], capture_output=True, text=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "v1 normal"
    assert Device.objects.get(pk=device.pk).last_seen_at > before


@pytest.mark.django_db
def test_each_phone_has_its_own_throttle(client, lender_a, monkeypatch) -> None:
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "agent", "2/min")
    phones = [enrolled_phone(lender_a) for _ in range(2)]

    def check_in(device, secret):
        return client.post(
            "/api/agent/v1/check-in",
            {"version": 1},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {device.pk}:{secret}",
        ).status_code

    (a, a_secret, _), (b, b_secret, _) = phones
    assert [check_in(a, a_secret) for _ in range(3)] == [200, 200, 429]
    assert check_in(b, b_secret) == 200  # another phone is not slowed by the first
