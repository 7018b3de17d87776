"""End to end, offline unlock: the reference agent simulator with its network cut, the live
server, a real Celery worker on Redis and the fake SMS gateway. A payment's code reaches the
customer by SMS and, typed on the lock screen, lifts the lock with no request to the server;
back online, the phone and the server agree without a second unlock or a re-lock."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.services import loan_support_pin_request
from apps.core.actor import Actor
from apps.devices.models import Device, OfflineToken
from apps.devices.services import enrollment_token_mint
from tests.collections.factories import noticed, signed_loan
from tests.collections.sweeps import sweep, today
from tests.collections.webhooks import URL, event
from tests.devices.factories import phone_registered, valid_imei
from tests.waiting import wait_for
from tools.agent_sim import Agent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]

CODE = re.compile(r"\b(\d{3}) (\d{3}) (\d{3})\b")


@pytest.fixture
def locked_phone(lender_a, live_server, settings):
    """The simulator enrolled on a loan 75 days late, locked by the sweep and applied."""
    settings.AGENT_API_BASE_URL = f"{live_server.url}/api/agent/v1/"
    loan = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=75))
    device = phone_registered(loan, imei=valid_imei(), brand="Tecno", model_name="Spark 20")
    token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
    agent = Agent(server=settings.AGENT_API_BASE_URL, token=token, imei=device.imei)
    agent.enroll()
    noticed(loan)
    sweep(loan, today(lender_a))
    agent.check_in()
    assert agent.effective_level() == "lock"
    loan.refresh_from_db()
    return agent, loan


def pay_by_webhook(live_server, loan, amount, reference) -> None:
    from tests.collections.webhooks import headers

    body = event(loan.reference, str(amount), reference)
    sent = {
        k.removeprefix("HTTP_").replace("_", "-"): v for k, v in headers(loan.lender, body).items()
    }
    answer = requests.post(
        live_server.url + URL,
        data=body,
        headers={**sent, "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def code_texted(sms_outbox, phone: str) -> str:
    """The digits of the newest unlock code texted to ``phone``, once it arrives."""
    wait_for(lambda: any(to == phone and CODE.search(body) for to, body in sms_outbox))
    body = [body for to, body in sms_outbox if to == phone and CODE.search(body)][-1]
    return "".join(CODE.search(body).groups())


def test_a_locked_phone_offline_is_unlocked_by_the_texted_code_and_agrees_once_online(
    locked_phone, live_server, redis_worker, sms_outbox, settings
) -> None:
    agent, loan = locked_phone
    settings.OFFLINE_CODE_SMS_AFTER_SECONDS = 1
    agent.network = False  # out of data: nothing reaches the server
    sent = agent.requests_sent
    overdue = [
        i for i in loan.installments.order_by("sequence") if i.due_date <= today(loan.lender)
    ]
    pay_by_webhook(live_server, loan, sum(i.total_due for i in overdue), "MP-1")

    digits = code_texted(sms_outbox, loan.customer.phone)
    assert agent.type_token(digits) == "normal"
    assert agent.effective_level() == "normal"
    assert agent.requests_sent == sent  # unlocked with no request to the server
    assert agent.type_token(digits) == "refused:used"  # a code works once

    agent.network = True
    applied = len(agent.phone.history)
    agent.check_in()  # reports the code, pulls the state the payment wrote
    device = Device.objects.get(pk=agent.device_id)
    assert device.acked_version == device.desired_version
    assert agent.effective_level() == "normal"
    # the one state pulled is the payment's: no re-lock on the way
    assert [level for _, level in agent.phone.history[applied:]] == ["normal"]
    code = OfflineToken.objects.get(device=device)
    wait_for(lambda: OfflineToken.objects.get(pk=code.pk).applied_at is not None)
    assert agent.check_in() is None  # nothing more to apply: no second unlock


def test_a_payoff_offline_releases_the_phone_which_the_server_marks_when_it_reports(
    locked_phone, live_server, redis_worker, sms_outbox, settings
) -> None:
    agent, loan = locked_phone
    settings.OFFLINE_CODE_SMS_AFTER_SECONDS = 1
    agent.network = False
    pay_by_webhook(live_server, loan, sum(i.total_due for i in loan.installments.all()), "MP-all")
    digits = code_texted(sms_outbox, loan.customer.phone)
    assert agent.type_token(digits) == "released"
    device = Device.objects.get(pk=agent.device_id)
    assert device.status == Device.Status.ENROLLED  # the server waits for the phone's word

    agent.network = True
    agent.check_in()
    device.refresh_from_db()
    assert device.status == Device.Status.RELEASED
    assert agent.stopped.is_set()


def test_a_used_code_stays_used_after_a_restart_and_another_phones_code_is_refused(
    locked_phone, live_server, redis_worker, sms_outbox, settings, tmp_path
) -> None:
    agent, loan = locked_phone
    settings.OFFLINE_CODE_SMS_AFTER_SECONDS = 1
    agent.network = False
    first = loan.installments.order_by("sequence").first()
    pay_by_webhook(live_server, loan, first.total_due, "MP-1")
    digits = code_texted(sms_outbox, loan.customer.phone)
    assert agent.type_token(digits) not in ("lock", "refused:used", "refused:invalid")
    keep = tmp_path / "phone.json"
    agent.save(keep)
    restarted = Agent.load(keep)
    restarted.network = False
    assert restarted.type_token(digits) == "refused:used"
    assert restarted.effective_level() == agent.effective_level()


def test_the_support_pin_lifts_the_lock_offline_once(locked_phone, live_server, make_agent) -> None:
    agent, loan = locked_phone
    agent.network = False
    from apps.collections.services import payment_record
    from apps.core.money import Money

    payment_record(
        loan_id=loan.pk,
        amount=Money(loan.installments.order_by("sequence").first().total_due, loan.currency),
        channel="manual",
        provider="manual",
        provider_ref="cash-1",
        received_at=timezone.now(),
        actor=Actor.system(),
        reason="The oldest installment, at the shop.",
    )
    challenge = agent.lock_screen_challenge()
    staff = make_agent(loan.lender)
    outcome = loan_support_pin_request(
        loan_id=loan.pk,
        lender_id=loan.lender_id,
        challenge=challenge,
        user=staff,
        actor=Actor.agent(staff),
        reason="Payment checked; customer stranded.",
    )
    assert agent.enter_pin(outcome.pin) == "normal"
    assert agent.lock_screen_challenge() != challenge  # the next PIN answers a new challenge
    assert agent.enter_pin(outcome.pin).startswith("refused")
    agent.network = True
    agent.check_in()
    reports = AuditEvent.objects.filter(action="devices.device.event_reported")
    assert [r.data["kind"] for r in reports] == ["support_pin_used"]


def test_the_emergency_grace_lifts_a_lock_offline_once_and_ends_by_itself(locked_phone) -> None:
    agent, loan = locked_phone
    agent.network = False
    start = datetime.now(UTC)
    agent.clock = lambda: start
    assert agent.emergency_unlock() is True
    assert agent.effective_level(start) == "block_apps"
    assert agent.emergency_unlock() is False  # once per restriction
    later = start + timedelta(hours=loan.lender.emergency_grace_hours, minutes=1)
    agent.clock = lambda: later
    assert agent.effective_level(later) == "lock"  # back to its lock by itself
    agent.network = True
    agent.check_in()
    reports = AuditEvent.objects.filter(action="devices.device.event_reported")
    assert [r.data["kind"] for r in reports] == ["emergency_grace_used"]
