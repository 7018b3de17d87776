"""Offline unlock codes on the server: issued by a payment that lowers a stage or pays off,
carried by the phone's next state, sent by SMS only when the phone did not take its state,
sent again on request, and marked applied when the phone reports it."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from openpaygo import TokenType, decode_token

from apps.audit.models import AuditEvent
from apps.core.actor import Actor, ActorType
from apps.devices.errors import OfflineCodeStale, OfflineCodeUnknown
from apps.devices.models import Device, DeviceEvent, OfflineToken
from apps.devices.offline import pin_challenge, pin_for, pin_secret, token_secret
from apps.devices.selectors import offline_code_digits, offline_code_waiting_for_loan
from apps.devices.services import (
    device_ack,
    device_event_report,
    device_state_set,
    offline_code_resend,
    offline_codes_deliver,
)
from tests.collections.offline import locked_phone, pay_cash
from tests.collections.sweeps import newest_state, today
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


@pytest.fixture
def locked(lender_a):
    """An enrolled phone on a loan 75 days late, locked by the sweep."""
    return locked_phone(lender_a)


def decoded(device, digits, *, count=0):
    secret = token_secret(lender_slug=device.lender.slug, device_id=device.pk)
    return decode_token(token=digits, secret_key=secret, count=count, used_counts=[])


def test_enrollment_gives_the_phone_its_offline_terms_once(lender_a) -> None:
    from apps.devices.services import device_enroll, enrollment_token_mint
    from tests.collections.factories import signed_loan
    from tests.devices.factories import phone_registered, valid_imei

    loan = signed_loan(lender_a)
    device = phone_registered(loan, imei=valid_imei(), brand="X", model_name="Y")
    token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
    enrolled = device_enroll(
        token=token,
        imei=device.imei,
        serial="",
        model_name="",
        android_version="14",
        agent_version="1.0",
        fcm_token="",
        agent_public_key="A" * 43 + "=",
        actor=Actor.system(),
    )
    terms = enrolled.offline
    device.refresh_from_db()
    assert device.token_epoch == loan.start_date
    assert terms["epoch"] == loan.start_date.isoformat()
    assert terms["token_secret"] == token_secret(lender_slug=lender_a.slug, device_id=device.pk)
    assert len(terms["token_secret"]) == 32
    assert len(terms["pin_secret"]) == 64
    assert terms["grace_days"] == loan.grace_days
    # the standard ladder (tests/lenders/factories.py), as the country allows it
    assert terms["ladder"] == [
        [1, "reminder"],
        [3, "wallpaper"],
        [7, "alarm"],
        [14, "block_apps"],
        [30, "lock"],
    ]
    # no secret reaches the audit trail
    trail = json.dumps([e.data for e in AuditEvent.objects.filter(target_id=str(device.pk))])
    assert terms["token_secret"] not in trail
    assert terms["pin_secret"] not in trail


ORDER = ["none", "reminder", "wallpaper", "alarm", "block_apps", "lock"]
# the standard ladder (tests/lenders/factories.py): days overdue past grace -> stage
LADDER = [(1, "reminder"), (3, "wallpaper"), (7, "alarm"), (14, "block_apps"), (30, "lock")]


def stage_on_phone(loan, paid_until, on) -> str:
    """What the phone derives from a paid-until date (docs/devices.md), written here."""
    late = (on - paid_until).days
    days = late if late > loan.grace_days else 0
    return next((s for d, s in reversed(LADDER) if days and days >= d), "none")


def test_a_payment_that_lowers_the_stage_issues_a_code_for_the_date_it_covers(locked) -> None:
    device, loan = locked
    first, second = loan.installments.order_by("sequence")[:2]
    pay_cash(loan, first.total_due)
    loan.refresh_from_db()
    code = OfflineToken.objects.get(device=device)
    device.refresh_from_db()
    state = newest_state(device)
    assert (code.kind, code.state_version) == ("set_time", state.version)
    # paid until the second installment's due date, or as much later as the books need for
    # the phone to derive their stage today (a block the customer was not told of: held)
    on = today(loan.lender)
    expected = second.due_date  # the earliest date from it the ladder holds to the books
    while ORDER.index(stage_on_phone(loan, expected, on)) > ORDER.index(loan.stage):
        expected += timedelta(days=1)
    # here the books hold a block the customer was not told of: the date is moved on
    assert expected > second.due_date
    assert code.paid_until == expected
    assert stage_on_phone(loan, code.paid_until, on) == loan.stage
    assert device.token_count == code.count == 1
    value, kind, count, _ = decoded(device, offline_code_digits(code=code))
    assert kind == TokenType.SET_TIME
    assert count == code.count
    assert value == (code.paid_until - device.token_epoch).days == code.value
    # the state the payment wrote carries the code's count: pulled, it supersedes the code
    assert state.document["token_count"] == code.count
    issued = AuditEvent.objects.get(action="devices.offline_code.issued", target_id=str(device.pk))
    assert issued.data["count"] == 1
    assert issued.data["paid_until"] == code.paid_until.isoformat()
    assert offline_code_digits(code=code) not in json.dumps(issued.data)


def test_a_payment_that_changes_no_stage_issues_no_code(lender_a) -> None:
    device, _secret, _key = enrolled_phone(lender_a)
    pay_cash(device.loan, device.loan.installments.first().total_due)
    assert not OfflineToken.objects.filter(device=device).exists()


def test_payoff_issues_the_code_that_releases_the_phone(locked) -> None:
    device, loan = locked
    pay_cash(loan, sum(i.total_due for i in loan.installments.all()))
    code = OfflineToken.objects.get(device=device)
    device.refresh_from_db()
    assert (code.kind, code.value, code.state_version) == (
        "disable_payg",
        None,
        device.desired_version,
    )
    assert newest_state(device).level == "released"
    _, kind, _, _ = decoded(device, offline_code_digits(code=code))
    assert kind == TokenType.DISABLE_PAYG
    # released only when the phone says so, as for a release it pulls
    assert device.status == Device.Status.ENROLLED


def test_the_code_goes_by_sms_only_when_the_phone_did_not_take_its_state(
    locked, settings, sms_outbox
) -> None:
    device, loan = locked
    settings.OFFLINE_CODE_SMS_AFTER_SECONDS = 120
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    assert offline_codes_deliver() == {"sms": 0, "not_needed": 0, "failed": 0}  # not yet due
    with time_machine.travel(timezone.now() + timedelta(seconds=121), tick=False):
        assert offline_codes_deliver()["sms"] == 1
    code.refresh_from_db()
    digits = offline_code_digits(code=code)
    body = f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    assert sms_outbox == [(loan.customer.phone, sms_outbox[0][1])]
    assert body in sms_outbox[0][1]
    assert (code.delivery, code.sms_ref) == ("sms", "fake-1")
    assert offline_codes_deliver()["sms"] == 0  # sent once


def test_a_phone_that_took_its_state_gets_no_sms(locked, sms_outbox) -> None:
    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        assert offline_codes_deliver() == {"sms": 0, "not_needed": 1, "failed": 0}
    assert sms_outbox == []


def test_a_phone_not_seen_for_a_while_gets_its_code_at_once(
    locked, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    device, loan = locked
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now() - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    assert (code.delivery, code.sms_attempts) == ("sms", 1)
    assert len(sms_outbox) == 1  # sent by the delivery started at commit (eager here)


def test_a_failed_sms_is_tried_again_a_minute_later(
    locked, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from tests.fakes.sms import FakeSmsGateway

    device, loan = locked
    Device.objects.filter(pk=device.pk).update(last_seen_at=None)
    FakeSmsGateway.down = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
        code = OfflineToken.objects.get(device=device)
        assert code.delivery == "waiting"
        assert code.sms_due_at > timezone.now()
    finally:
        FakeSmsGateway.down = False
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=False):
        assert offline_codes_deliver()["sms"] == 1
    assert len(sms_outbox) == 1


def test_an_sms_that_keeps_failing_is_marked_failed_after_its_attempts(
    locked, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from apps.devices.services.offline import SMS_ATTEMPTS
    from tests.fakes.sms import FakeSmsGateway

    device, loan = locked
    Device.objects.filter(pk=device.pk).update(last_seen_at=None)
    FakeSmsGateway.down = True
    try:
        with django_capture_on_commit_callbacks(execute=True):  # attempt 1, at commit
            pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
        for minutes in range(1, SMS_ATTEMPTS):
            with time_machine.travel(timezone.now() + timedelta(minutes=2 * minutes), tick=False):
                assert offline_codes_deliver()["failed"] == 1
    finally:
        FakeSmsGateway.down = False
    code = OfflineToken.objects.get(device=device)
    assert (code.delivery, code.sms_attempts) == ("failed", SMS_ATTEMPTS)
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        assert offline_codes_deliver() == {"sms": 0, "not_needed": 0, "failed": 0}
    assert sms_outbox == []


def test_a_code_made_stale_by_a_state_of_another_level_is_never_sent(locked, sms_outbox) -> None:
    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    device_state_set(device_id=device.pk, level="lock", actor=Actor.system(), reason="Reversed.")
    with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False):
        assert offline_codes_deliver() == {"sms": 0, "not_needed": 1, "failed": 0}
    assert sms_outbox == []
    assert offline_code_waiting_for_loan(loan_id=loan.pk, lender_id=loan.lender_id) is None


def test_a_state_reissued_at_the_same_level_leaves_the_code_current(
    locked, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from apps.devices.services import state_reissue

    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    with transaction.atomic():
        state_reissue(
            device=Device.objects.select_for_update().get(pk=device.pk),
            actor=Actor.system(),
            reason="A new key.",
        )
    assert offline_code_waiting_for_loan(loan_id=loan.pk, lender_id=loan.lender_id) == code
    with django_capture_on_commit_callbacks(execute=True):
        offline_code_resend(
            device_id=device.pk, lender_id=loan.lender_id, actor=Actor.system(), reason="Asked."
        )
    assert len(sms_outbox) == 1  # not refused as stale: sent
    assert AuditEvent.objects.filter(action="devices.offline_code.resent").count() == 1


def test_the_issue_is_audited_with_the_state_the_code_stands_for(locked) -> None:
    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    issued = AuditEvent.objects.get(action="devices.offline_code.issued")
    assert issued.data["state_version"] == code.state_version == newest_state(device).version


def test_the_newest_code_is_sent_again_while_it_stands_for_the_newest_state(
    locked, lender_b, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )
    with pytest.raises(OfflineCodeUnknown):  # another lender's agent gets nothing
        offline_code_resend(
            device_id=device.pk, lender_id=lender_b.pk, actor=Actor.system(), reason="x"
        )
    with django_capture_on_commit_callbacks(execute=True):
        offline_code_resend(
            device_id=device.pk,
            lender_id=loan.lender_id,
            actor=Actor.system(),
            reason="Asked by phone.",
        )
    assert len(sms_outbox) == 1  # acked or not: asked for, it goes
    assert AuditEvent.objects.filter(action="devices.offline_code.resent").count() == 1
    device_state_set(device_id=device.pk, level="lock", actor=Actor.system(), reason="Reversed.")
    with pytest.raises(OfflineCodeStale):
        offline_code_resend(
            device_id=device.pk, lender_id=loan.lender_id, actor=Actor.system(), reason="Again."
        )
    assert len(sms_outbox) == 1


def test_a_code_the_phone_reports_applied_is_marked_and_audited(locked) -> None:
    device, loan = locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    applied_at = timezone.now()
    for _ in range(2):  # a report sent twice is stored once
        device_event_report(
            device_id=device.pk,
            event_id="e-1",
            kind=DeviceEvent.Kind.OFFLINE_TOKEN_APPLIED,
            occurred_at=applied_at,
            detail={"count": code.count, "type": "set_time", "value": code.value},
            actor=Actor(type=ActorType.DEVICE, id=str(device.pk)),
        )
    code.refresh_from_db()
    assert code.applied_at == applied_at
    device_event_report(
        device_id=device.pk,
        event_id="e-2",
        kind=DeviceEvent.Kind.OFFLINE_TOKEN_APPLIED,
        occurred_at=applied_at,
        detail={"count": 99, "type": "set_time", "value": 1},
        actor=Actor(type=ActorType.DEVICE, id=str(device.pk)),
    )
    reports = AuditEvent.objects.filter(action="devices.device.event_reported").order_by("id")
    assert [r.data.get("problem") for r in reports] == [None, "unknown_code"]


def test_the_support_pin_answers_the_challenge_of_its_own_phone_only(lender_a) -> None:
    device, _secret, _key = enrolled_phone(lender_a)
    other, _secret, _key = enrolled_phone(lender_a)
    secret = pin_secret(lender_slug=lender_a.slug, device_id=device.pk)
    challenge = pin_challenge(secret, 0)
    assert len(challenge) == 6
    assert challenge != pin_challenge(secret, 1)
    pin = pin_for(secret, challenge)
    assert len(pin) == 8
    assert pin != pin_for(pin_secret(lender_slug=lender_a.slug, device_id=other.pk), challenge)


def test_the_receipt_points_to_the_code_but_never_stores_its_digits(
    locked, lender_a, django_capture_on_commit_callbacks
) -> None:
    from apps.notifications.models import Notification

    device, loan = locked
    with django_capture_on_commit_callbacks(execute=True):
        pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    digits = offline_code_digits(code=code)
    receipt = Notification.objects.get(loan=loan, kind="payment")
    assert "unlock code comes in a separate SMS" in receipt.body
    stored = " ".join(Notification.objects.values_list("body", flat=True))
    assert digits not in stored.replace(" ", "")
    # a payment that brings no code (the loan is current): a plain receipt
    current, _secret, _key = enrolled_phone(lender_a)
    with django_capture_on_commit_callbacks(execute=True):
        pay_cash(current.loan, current.loan.installments.first().total_due, ref="p-2")
    plain = Notification.objects.get(loan=current.loan, kind="payment")
    assert "offline" not in plain.body


def test_paying_ahead_while_the_phone_is_offline_moves_the_code_on(locked) -> None:
    """Lowered to no stage by one payment, then the next installment paid before the phone
    took its state: a code for the later date, or offline it would climb from the first."""
    device, loan = locked
    overdue = [
        i for i in loan.installments.order_by("sequence") if i.due_date <= today(loan.lender)
    ]
    pay_cash(loan, sum(i.total_due for i in overdue))
    loan.refresh_from_db()
    assert loan.stage == "none"
    first = OfflineToken.objects.get(device=device)
    upcoming = loan.installments.order_by("sequence")[len(overdue)]
    assert first.paid_until == upcoming.due_date
    pay_cash(loan, upcoming.total_due, ref="cash-2")
    codes = list(OfflineToken.objects.filter(device=device).order_by("count"))
    assert len(codes) == 2
    assert codes[1].paid_until == loan.installments.order_by("sequence")[len(overdue) + 1].due_date
    assert codes[0].delivery == "not_needed"  # superseded by the new one
    # once the phone took its state, a payment ahead needs no code: it pulls the books
    device.refresh_from_db()
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )
    pay_cash(loan, Decimal("100.00"), ref="cash-3")
    assert OfflineToken.objects.filter(device=device).count() == 2
