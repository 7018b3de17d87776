"""The reference integration (tools/lender_reference.py) end to end: run as a lender's
developer runs it, in its own process, against a live server with a real Celery worker on
Redis delivering the webhooks; the agent simulator enrolls the phone from the QR code the
script saved."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from django.conf import settings as django_settings

from apps.collections.models import Loan, Payment
from apps.devices.models import Device
from apps.integrations.models import WebhookEndpoint
from tests.devices.factories import valid_imei
from tests.lenders.factories import (
    LoanProductFactory,
    api_key_for,
    restriction_policy_version_for,
)
from tests.waiting import wait_for
from tools.agent_sim import Agent

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def test_the_reference_script_creates_enrolls_pays_and_verifies_the_webhooks(
    lender_a, live_server, settings, redis_worker, tmp_path
) -> None:
    settings.AGENT_API_BASE_URL = f"{live_server.url}/api/agent/v1/"
    restriction_policy_version_for(lender_a)
    product = LoanProductFactory(lender=lender_a)
    _, key = api_key_for(lender_a, scopes=["loans:write", "payments:write", "webhooks:manage"])
    imei, qr = valid_imei(), tmp_path / "qr.png"
    script = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.lender_reference",
            "--base-url",
            live_server.url,
            "--product-id",
            str(product.pk),
            "--imei",
            imei,
            "--external-id",
            "LS-REF-1",
            "--qr-out",
            str(qr),
            "--timeout",
            "60",
        ],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "SC_API_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(script.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("enrollment QR saved" in line for line in lines), timeout=60)
        # the phone scans the QR code the script saved, as at the counter
        agent = Agent.from_qr(qr.read_bytes(), imei=imei)
        agent.enroll()
        assert script.wait(timeout=120) == 0, "".join(lines)
    finally:
        if script.poll() is None:
            script.kill()
        reader.join(timeout=10)
        script.stdout.close()
    out = "".join(lines)

    loan = Loan.objects.get(lender=lender_a, external_id="LS-REF-1")
    device = Device.objects.get(loan=loan)
    assert (device.imei, device.status) == (imei, "enrolled")
    payment = Payment.objects.get(loan=loan)
    for verified in (
        "webhook verified loan.signed evt_",
        '"external_id": "LS-REF-1"',
        "webhook verified device.enrolled",
        f'"device_id": {device.pk}',
        "webhook verified payment.applied",
        f'"payment_id": {payment.pk}',
        "done: loan.signed, device.enrolled and payment.applied received and verified",
    ):
        assert verified in out, out
    assert "REFUSED" not in out
    assert not WebhookEndpoint.objects.filter(lender=lender_a).exists()  # it cleaned up


def test_the_reference_script_needs_nothing_of_this_project() -> None:
    import ast
    from pathlib import Path

    source = Path(django_settings.BASE_DIR, "tools", "lender_reference.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"requests", "standardwebhooks"}
