"""Drills for the deployment: `check --deploy` clean under production settings with secrets
only from the environment, and no personal data (phone, national id) in the logs of the
flows that handle it."""

import logging
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from apps.collections.errors import PaymentStartFailed
from apps.collections.services import (
    loan_stage_sweep,
    payment_attempt_reconcile,
    payment_attempt_start,
)
from apps.core.actor import Actor
from apps.customers.services import customer_login_code_request
from apps.integrations.payments.signing import path_token_for
from apps.lenders.selectors import lender_local_date
from apps.notifications.services import notifications_dispatch
from tests.collections.daraja import KEY, PASSKEY, SECRET, call, paybill_for
from tests.collections.daraja import path as mpesa_path
from tests.collections.webhooks import deliver, event
from tests.devices.factories import enrolled_phone

pytestmark = [pytest.mark.drill]
ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` in a process of its own with only ``env`` for its environment."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_is_clean_under_production_settings(report) -> None:
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(ROOT)),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "pay.example.com",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:5432/nothing",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
        "PAYMENTS_WEBHOOK_MASTER_KEY": secrets.token_urlsafe(32),
        "DEVICE_SIGNING_MASTER_KEY": secrets.token_urlsafe(32),
        "PAYMENTS_CREDENTIALS_KEYS": Fernet.generate_key().decode(),
        "PAYMENTS_CALLBACK_BASE_URL": "https://pay.example.com",
        "AGENT_SIGNATURE_CHECKSUM": "checksum",
        "SMS_GATEWAY_CLASS": "apps.integrations.sms.base.ConsoleSmsGateway",
        "AGENT_API_BASE_URL": "https://agent.example.com/api/agent/v1/",
        "FCM_CREDENTIALS_FILE": "/nonexistent.json",
        "CACHE_URL": "redis://127.0.0.1:6379/9",
    }
    run = manage("check", "--deploy", "--fail-level", "WARNING", env=environment)
    report(
        f"check --deploy (production settings): exit {run.returncode}: {run.stdout.strip() or run.stderr[-300:]}"
    )
    assert run.returncode == 0
    assert "System check identified no issues" in run.stdout
    missing = dict(environment)
    del missing["PAYMENTS_WEBHOOK_MASTER_KEY"]
    refused = manage("check", env=missing)
    assert refused.returncode != 0  # a secret missing from the environment stops the start
    assert "PAYMENTS_WEBHOOK_MASTER_KEY" in refused.stderr
    for name in ("PAYMENTS_WEBHOOK_MASTER_KEY", "DEVICE_SIGNING_MASTER_KEY"):
        weak = {**environment, name: "x" * 31}
        refused = manage("check", "--deploy", env=weak)
        assert refused.returncode != 0  # a master key under 32 bytes fails the deploy check
        assert f"{name} is 31 bytes long" in refused.stderr
    report("check --deploy refuses either master key at 31 bytes, naming it")
    not_a_key = {**environment, "PAYMENTS_CREDENTIALS_KEYS": f"{secrets.token_urlsafe(32)},x"}
    refused = manage("check", "--deploy", env=not_a_key)
    assert refused.returncode != 0  # a credentials key that is not a Fernet key
    assert "PAYMENTS_CREDENTIALS_KEYS" in refused.stderr + refused.stdout
    plain_http = {**environment, "PAYMENTS_CALLBACK_BASE_URL": "http://pay.example.com"}
    refused = manage("check", "--deploy", env=plain_http)
    assert refused.returncode != 0  # providers would be told to call back over plain HTTP
    assert "integrations.E003" in refused.stderr + refused.stdout


class Lines(logging.Handler):
    """Every log line, on the root logger. A task run in the test (Celery's first one) sets
    up Celery's logging, which empties the root logger's handlers, pytest's capture with
    them: ``keep`` puts this one back after each step, so no line goes unread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def keep(self) -> None:
        root = logging.getLogger()
        if self not in root.handlers:
            root.addHandler(self)


@pytest.mark.django_db
def test_no_phone_number_national_id_or_provider_secret_reaches_the_logs(
    client, lender_a, caplog, sms_outbox, report, django_capture_on_commit_callbacks, daraja
) -> None:
    caplog.set_level(logging.DEBUG)
    captured = Lines()
    captured.keep()
    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=50))
    customer = device.loan.customer
    with django_capture_on_commit_callbacks(execute=True):  # the code is sent by a task
        customer_login_code_request(
            lender_id=lender_a.pk, phone=customer.phone, actor=Actor.system()
        )
    assert len(sms_outbox) == 1
    captured.keep()
    loan_stage_sweep(
        lender_id=lender_a.pk,
        business_date=lender_local_date(lender=lender_a),
        id_from=0,
        id_to=10**12,
    )
    deliver(client, lender_a, event(device.loan.reference, "500.00", "PII-1"))
    # M-Pesa: a push to the customer's number, one Daraja refuses, a callback from outside the
    # allow-list on the secret path, the callback, and the status query
    paybill_for(lender_a)
    actor = Actor.system()
    loan = device.loan
    with pytest.raises(PaymentStartFailed):
        payment_attempt_start(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            provider="mpesa",
            actor=actor,
            phone=customer.phone.replace("+2547", "+2546"),
        )
    attempt = payment_attempt_start(
        loan_id=loan.pk, lender_id=lender_a.pk, provider="mpesa", actor=actor, phone=customer.phone
    )
    daraja.settle(attempt.attempt_ref, 0, callback=False)
    push = daraja.pushes[attempt.attempt_ref]
    captured.keep()
    call(client, mpesa_path(lender_a, "stk"), daraja.stk_callback_body(push), ip="41.90.1.2")
    captured.keep()
    payment_attempt_reconcile(
        attempt_id=attempt.pk, actor=actor, now=timezone.now() + timedelta(minutes=5)
    )
    call(client, mpesa_path(lender_a, "stk"), daraja.stk_callback_body(push))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("apps.notifications.rules.contact_slot", lambda **kwargs: timezone.now())
        notifications_dispatch()
    logging.getLogger().removeHandler(captured)
    personal = {
        customer.phone,
        customer.phone.lstrip("+"),
        customer.phone[-9:],
        customer.national_id,
        # the provider's secrets and the callback path's token
        KEY,
        SECRET,
        PASSKEY,
        path_token_for(lender_slug=lender_a.slug, provider="mpesa"),
    }
    lines = captured.lines
    assert any("Forbidden: /api/payments/v1/daraja/" in line for line in lines)
    leaks = [line for line in lines if any(value in line for value in personal)]
    report(
        f"personal data in logs: {len(leaks)} of {len(lines)} log lines name a phone, a national "
        "id or a provider's secret"
    )
    assert lines  # the flows did log
    assert not leaks
