"""bench-offline, part 2: a payment webhook to "unlocked" for a phone with no network.

The product runs as in production, on loopback: gunicorn and a Celery worker on a Redis
broker of the run's own, with the fake SMS gateway writing each message to a spool file. The
reference simulator enrolls over HTTP on a loan 75 days late, which the sweep locks; its
network is then cut. The clock starts as the signed webhook paying what is overdue is sent,
and stops when the simulator, given the code read from the SMS spool, says it is no longer
locked (with no request to the server: checked). The code's SMS waits ``sms_after`` seconds
for the phone to take its state first, as ``OFFLINE_CODE_SMS_AFTER_SECONDS`` (120) does in
production."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import timedelta
from typing import Any

CODE = re.compile(r"\b(\d{3}) (\d{3}) (\d{3})\b")


def _late_loan() -> tuple[Any, Any]:
    """A loan signed 75 days ago, its customer told of the lock ahead, and its phone
    registered: (loan, device)."""
    from django.db import transaction
    from django.utils import timezone

    from apps.core.actor import Actor
    from apps.devices.services import device_register
    from apps.lenders.selectors import lender_day_start
    from apps.notifications.models import Notification
    from tools.bench._seed import lender_seed, loan_seed

    lender = lender_seed(slug="bench-offline-e2e", name="Bench Offline E2E")
    actor, run = Actor.system(), int(time.time())
    with transaction.atomic():
        loan = loan_seed(
            lender,
            full_name="Offline Customer",
            phone=f"07{run % 10**8:08d}",
            national_id=f"94{run % 10**6:06d}",
            signed_at=timezone.now() - timedelta(days=75),
        )
        customer_id = loan.customer_id
        oldest = loan.installments.order_by("sequence").first()
        told = lender_day_start(lender=lender, day=oldest.due_date) + timedelta(hours=12)
        # the customer was told of the lock ahead (the SMS provider took the notice)
        Notification.objects.create(
            lender_id=lender.pk,
            customer_id=customer_id,
            loan=loan,
            kind="notice",
            status="sms",
            locale="en",
            body="The phone may be locked.",
            dedupe_key=f"bench-notice:{loan.pk}",
            scheduled_for=told,
            sent_at=told,
            announces_stage="lock",
            announces_on=oldest.due_date,
        )
        imei = f"35{run % 10**12:012d}"
        from stdnum import luhn

        imei = imei[:14] + luhn.calc_check_digit(imei[:14])
        device = device_register(
            loan_id=loan.pk,
            lender_id=lender.pk,
            imei=imei,
            brand="Bench",
            model_name="Offline",
            actor=actor,
        )
    return loan, device


def run_e2e(*, sms_after: int) -> float:
    """Seconds from the payment webhook to the simulator no longer locked."""
    import requests
    from django.utils import timezone

    from apps.collections.services import loan_stage_sweep
    from apps.core.actor import Actor
    from apps.devices.services import enrollment_token_mint
    from apps.integrations.payments.signing import sign, webhook_secret_for
    from apps.lenders.selectors import lender_local_date
    from tools.agent_sim import Agent
    from tools.bench.load import product_running

    loan, device = _late_loan()
    env = {**os.environ, "OFFLINE_CODE_SMS_AFTER_SECONDS": str(sms_after)}
    with product_running(env=env, workers=1) as product:
        base = f"http://127.0.0.1:{product.port}"
        token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
        agent = Agent(server=f"{base}/api/agent/v1/", token=token, imei=device.imei)
        agent.enroll()
        lender = loan.lender
        loan_stage_sweep(
            lender_id=lender.pk,
            business_date=lender_local_date(lender=lender),
            id_from=loan.pk,
            id_to=loan.pk + 1,
        )
        agent.check_in()
        if agent.effective_level() != "lock":
            raise SystemExit(f"the phone is not locked: {agent.describe()}")
        agent.network = False
        sent = agent.requests_sent
        today = lender_local_date(lender=lender)
        due = sum(i.total_due for i in loan.installments.all() if i.due_date <= today)
        body = json.dumps(
            {
                "id": f"evt-offline-{loan.pk}",
                "type": "payment.succeeded",
                "data": {
                    "loan": loan.reference,
                    "amount": str(due),
                    "currency": "KES",
                    "reference": f"MP-offline-{loan.pk}",
                },
            }
        ).encode()
        secret = webhook_secret_for(lender_slug=lender.slug, provider="demo")
        started = time.perf_counter()
        answer = requests.post(
            f"{base}/api/payments/v1/webhooks/demo/",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Lender": lender.slug,
                "X-Signature": sign(secret=secret, body=body),
            },
            timeout=30,
        )
        if answer.status_code != 200:
            raise SystemExit(f"webhook refused: {answer.status_code} {answer.text[:200]}")
        phone = loan.customer.phone
        deadline = time.monotonic() + 120
        while True:
            texts = [json.loads(line) for line in product.spool.read_text().splitlines() if line]
            found = [CODE.search(t["body"]) for t in texts if t["to"] == phone]
            codes = [m for m in found if m]
            if codes:
                break
            if time.monotonic() > deadline:
                raise SystemExit("no unlock code was texted within 120 s")
            time.sleep(0.05)
        level = agent.type_token("".join(codes[-1].groups()))
        took = time.perf_counter() - started
        if level in ("lock",) or level.startswith("refused") or agent.requests_sent != sent:
            raise SystemExit(f"the code did not unlock the phone offline: {level}")
        agent.network = True
        agent.check_in()
        print(
            f"  e2e: code texted and typed, phone {level}; back online: {agent.describe()} "
            f"(at {timezone.now():%H:%M:%S})"
        )
    return took
