"""The loan's evidence file: what it holds, that its verifier runs alone, and who may have it."""

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.services import loan_stage_sweep, payment_record
from apps.core.actor import Actor
from apps.core.money import Money
from apps.devices.services import device_ack
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


@pytest.fixture
def restricted_then_paid(lender_a):
    """A loan whose phone the sweep restricted and acknowledged, then a payment lifted it."""
    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=50))
    noticed(device.loan)  # told of the lock ahead
    loan_stage_sweep(
        lender_id=lender_a.pk,
        business_date=lender_local_date(lender=lender_a),
        id_from=0,
        id_to=10**12,
    )
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )
    late = device.loan.installments.get(sequence=1)
    payment_record(
        loan_id=device.loan_id,
        amount=Money(late.total_due, lender_a.currency),
        channel="manual",
        provider="manual",
        provider_ref="cash-1",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="Cash at the shop.",
    )
    return device.loan


def download(client, loan) -> zipfile.ZipFile:
    response = client.get(reverse("admin:collections_loan_evidence", args=[loan.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"evidence-{loan.reference}-" in response["Content-Disposition"]
    return zipfile.ZipFile(io.BytesIO(response.content))


def test_the_evidence_file_holds_the_loans_story_and_verifies_alone(
    lender_a, make_agent, verified_client, restricted_then_paid, tmp_path
) -> None:
    loan = restricted_then_paid
    agent = make_agent(lender_a)
    archive = download(verified_client(agent), loan)
    assert sorted(archive.namelist()) == [
        "README.txt",
        "audit-events.json",
        "evidence.pdf",
        "hashing.py",
        "verify.py",
    ]
    pack = json.loads(archive.read("audit-events.json"))
    actions = [e["action"] for e in pack["events"]]
    for action in (
        "customers.consent.recorded",
        "collections.loan.signed",
        "devices.device.enrolled",
        "collections.loan.stage_changed",
        "devices.state.acknowledged",
        "collections.payment.received",
        "audit.evidence.exported",
    ):
        assert action in actions, action
    raised = next(e for e in pack["events"] if e["action"] == "collections.loan.stage_changed")
    assert raised["data"]["stage"] == {"old": "none", "new": "block_apps"}
    assert raised["data"]["policy_version_id"] == loan.policy_version_id
    assert [e["seq"] for e in pack["events"]] == sorted(e["seq"] for e in pack["events"])
    exported = AuditEvent.objects.get(action="audit.evidence.exported")
    assert (exported.actor_type, exported.actor_id, exported.target_id) == (
        "agent",
        str(agent.pk),
        str(loan.pk),
    )

    pdf = archive.read("evidence.pdf")
    assert pdf.startswith(b"%PDF-")
    assert pdf.count(b"/Type /Page\n") >= 2

    archive.extractall(tmp_path)
    run = subprocess.run(
        [sys.executable, "-E", "-s", "verify.py", "audit-events.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith(f"OK      {len(pack['events'])} events")

    forged = json.loads((tmp_path / "audit-events.json").read_text())
    victim = next(e for e in forged["events"] if e["action"] == "collections.payment.received")
    victim["data"]["amount"] = str(Decimal(victim["data"]["amount"]) / 2)
    victim["data_text"] = json.dumps(victim["data"])
    (tmp_path / "audit-events.json").write_text(json.dumps(forged))
    run = subprocess.run(
        [sys.executable, "-E", "-s", "verify.py", "audit-events.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == (
        f"BROKEN  event seq {victim['seq']} (collections.payment.received): "
        "its hash does not match its contents\n"
    )


def test_another_lenders_agent_gets_no_evidence(
    lender_b, make_agent, verified_client, restricted_then_paid
) -> None:
    client = verified_client(make_agent(lender_b))
    response = client.get(
        reverse("admin:collections_loan_evidence", args=[restricted_then_paid.pk])
    )
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="audit.evidence.exported").exists()


def test_a_web_process_loads_the_pdf_library_only_when_a_file_is_exported() -> None:
    """fpdf and its font tools weigh about 18 MiB per web process: a process that has
    loaded the URLs (the back office and every page) has not loaded them."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, sys; django.setup(); import config.urls; print('fpdf' in sys.modules)",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "False"
