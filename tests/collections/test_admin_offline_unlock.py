"""Offline unlock on the loan's page in the back office: the codes issued to the phone (never
their digits), "send the unlock code again", and the support PIN an agent reads out against the
lock screen's challenge, with a supervisor's approval when nothing was paid."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import SupportPin
from apps.core.actor import Actor, ActorType
from apps.devices.models import DeviceEvent, OfflineToken
from apps.devices.selectors import offline_code_digits
from apps.devices.services import (
    device_event_report,
    device_state_set,
    offline_codes_deliver,
)
from apps.lenders.models import Membership
from tests.collections.factories import signed_loan
from tests.collections.offline import challenge_of, locked_phone, pay_cash, pin_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def locked(lender_a):
    return locked_phone(lender_a)


def pay_first_installment(loan) -> OfflineToken:
    """Pay the oldest installment: the stage drops and the phone gets an unlock code."""
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    return OfflineToken.objects.get(device__loan=loan)


def change_page(loan) -> str:
    return reverse("admin:collections_loan_change", args=[loan.pk])


def resend_url(loan) -> str:
    return reverse("admin:collections_loan_act", args=[loan.pk, "resend-code"])


def pin_url(loan) -> str:
    return reverse("admin:collections_loan_support_pin", args=[loan.pk])


def decide_url(loan, ask) -> str:
    return reverse("admin:collections_loan_support_pin_decide", args=[loan.pk, ask.pk])


def expected_pin(device, challenge: str) -> str:
    """The PIN the phone accepts for ``challenge``, grouped as the page shows it."""
    pin = pin_of(device, challenge)
    return f"{pin[:4]} {pin[4:]}"


def codes_table(page: str) -> str:
    start = page.index('<table id="offline-codes">')
    return page[start : page.index("</table>", start)]


def test_the_loans_page_lists_the_codes_issued_never_their_digits(
    locked, make_agent, verified_client, django_capture_on_commit_callbacks
) -> None:
    device, loan = locked
    client = verified_client(make_agent(loan.lender))
    before = client.get(change_page(loan)).content.decode()
    assert "Offline unlock codes" in before
    assert "No code issued yet" in before
    assert 'id="act-resend-code"' not in before  # nothing to send again

    with django_capture_on_commit_callbacks(execute=True):  # its receipt queued, as in life
        code = pay_first_installment(loan)
    digits = offline_code_digits(code=code)
    page = client.get(change_page(loan)).content.decode()
    assert "unlock code comes in a separate SMS" in page  # the receipt, in the messages
    table = codes_table(page)
    assert "Paid until (lowers the restriction)" in table
    assert code.paid_until.isoformat() in table
    assert "Waiting for the phone to check in" in table
    assert 'id="act-resend-code"' in page
    for shown in (digits, f"{digits[:3]} {digits[3:6]} {digits[6:]}"):
        assert shown not in page

    # the SMS goes when the phone did not take its state in time; later the phone reports
    # that it applied the code offline
    later = timezone.now() + timedelta(minutes=3)
    with time_machine.travel(later, tick=False):
        assert offline_codes_deliver()["sms"] == 1
    device_event_report(
        device_id=device.pk,
        event_id="applied-1",
        kind=DeviceEvent.Kind.OFFLINE_TOKEN_APPLIED,
        occurred_at=later + timedelta(minutes=1),
        detail={"count": code.count, "type": "set_time", "value": code.value},
        actor=Actor(type=ActorType.DEVICE, id=str(device.pk)),
    )
    table = codes_table(client.get(change_page(loan)).content.decode())
    sent_at = timezone.localtime(later).strftime("%Y-%m-%d %H:%M")
    applied_at = timezone.localtime(later + timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M")
    assert f"Sent by SMS ({sent_at})" in table
    assert f"<td>{applied_at}</td></tr>" in table


def test_an_agent_sends_the_code_again_once_and_never_a_stale_one(
    locked, make_agent, verified_client, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    device, loan = locked
    agent = make_agent(loan.lender)
    client = verified_client(agent)
    nothing = client.post(resend_url(loan), {"reason": "Customer asks."}).content.decode()
    assert "This phone has no unlock code to send." in nothing

    code = pay_first_installment(loan)
    blank = client.post(resend_url(loan), {"reason": ""}).content.decode()
    assert "This field is required." in blank
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            resend_url(loan), {"reason": "Customer lost the first SMS."}, follow=True
        )
    assert (
        f"Done: Send the unlock code again. Code #{code.count} goes to the customer by SMS now."
        in answer.content.decode()
    )
    digits = offline_code_digits(code=code)
    assert len(sms_outbox) == 1
    assert sms_outbox[0][0] == loan.customer.phone
    assert f"{digits[:3]} {digits[3:6]} {digits[6:]}" in sms_outbox[0][1]
    resent = AuditEvent.objects.get(action="devices.offline_code.resent")
    assert (resent.actor_id, resent.reason) == (str(agent.pk), "Customer lost the first SMS.")

    # a newer state (a reversal, a sweep) voids the code: refused, with why, and nothing sent
    device_state_set(device_id=device.pk, level="lock", actor=Actor.system(), reason="Reversed.")
    with django_capture_on_commit_callbacks(execute=True):
        stale = client.post(resend_url(loan), {"reason": "Again."}).content.decode()
    assert "no longer matches its state" in stale
    assert "The next payment brings a new code." in stale
    assert len(sms_outbox) == 1
    assert AuditEvent.objects.filter(action="devices.offline_code.resent").count() == 1


def test_after_a_payment_the_agent_reads_the_pin_once_and_it_is_audited(
    locked, make_agent, verified_client
) -> None:
    device, loan = locked
    # paid enough to lower the stage in the books; the phone, offline, still locked
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    agent = make_agent(loan.lender)
    client = verified_client(agent)
    page = client.get(change_page(loan)).content.decode()
    assert 'id="support-pin"' in page
    challenge = challenge_of(device)
    spaced = f"{challenge[:3]} {challenge[3:]}"  # as the customer reads it out
    answer = client.post(pin_url(loan), {"challenge": spaced, "reason": "Paid 100 in cash."})
    assert answer.status_code == 200
    shown = answer.content.decode()
    pin = expected_pin(device, challenge)
    assert f'<p id="support-pin">{pin}</p>' in shown
    assert "no-store" in answer["Cache-Control"]
    ask = SupportPin.objects.get(loan=loan)
    assert (ask.status, ask.challenge, ask.requested_by_id) == ("issued", challenge, agent.pk)
    events = AuditEvent.objects.filter(action__startswith="collections.support_pin").order_by("id")
    assert [(e.action, e.actor_id, e.reason) for e in events] == [
        ("collections.support_pin.requested", str(agent.pk), "Paid 100 in cash."),
        ("collections.support_pin.issued", str(agent.pk), "Paid 100 in cash."),
    ]
    trail = json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))
    assert pin.replace(" ", "") not in trail
    # shown once: not on the loan's page, in a message or in a cookie
    again = client.get(change_page(loan)).content.decode()
    assert pin not in again
    assert pin.replace(" ", "") not in again
    assert pin.replace(" ", "") not in str(client.cookies)


def test_a_bad_challenge_or_no_reason_is_a_form_error(locked, make_agent, verified_client) -> None:
    device, loan = locked
    client = verified_client(make_agent(loan.lender))
    bad = client.post(pin_url(loan), {"challenge": "12345", "reason": "Checked."})
    assert "The challenge is the 6 digits the phone&#x27;s lock screen shows." in (
        bad.content.decode()
    )
    blank = client.post(pin_url(loan), {"challenge": challenge_of(device), "reason": ""})
    assert "This field is required." in blank.content.decode()
    assert not SupportPin.objects.exists()


def test_without_a_payment_a_supervisor_other_than_the_requester_approves(
    locked, make_agent, verified_client
) -> None:
    device, loan = locked
    requester = make_agent(loan.lender, role=Membership.Role.SUPERVISOR)
    asking = verified_client(requester)
    challenge = challenge_of(device)
    waiting = asking.post(
        pin_url(loan), {"challenge": challenge, "reason": "Stranded at night."}, follow=True
    )
    page = waiting.content.decode()
    assert "Waiting for a supervisor" in page
    pin = expected_pin(device, challenge)
    assert pin not in page
    ask = SupportPin.objects.get(loan=loan)
    assert ask.status == "requested"
    assert decide_url(loan, ask) in page  # the request waits on the loan's page

    own = asking.post(decide_url(loan, ask), {"approve": "yes", "reason": "Mine."})
    assert "never their own request" in own.content.decode()
    assert pin not in own.content.decode()
    plain_agent = verified_client(make_agent(loan.lender))
    refused = plain_agent.post(decide_url(loan, ask), {"approve": "yes", "reason": "Me."})
    assert refused.status_code == 403

    supervisor = make_agent(loan.lender, role=Membership.Role.SUPERVISOR)
    deciding = verified_client(supervisor)
    form = deciding.get(decide_url(loan, ask)).content.decode()
    assert "Asked because: Stranded at night." in form
    approved = deciding.post(
        decide_url(loan, ask), {"approve": "yes", "reason": "Identity checked by call."}
    )
    assert approved.status_code == 200
    assert f'<p id="support-pin">{pin}</p>' in approved.content.decode()
    assert "no-store" in approved["Cache-Control"]
    ask.refresh_from_db()
    assert (ask.status, ask.decided_by_id) == ("issued", supervisor.pk)
    issued = AuditEvent.objects.get(action="collections.support_pin.issued")
    assert issued.actor_id == str(supervisor.pk)


def test_a_supervisor_rejects_with_a_reason(locked, make_agent, verified_client) -> None:
    device, loan = locked
    verified_client(make_agent(loan.lender)).post(
        pin_url(loan), {"challenge": challenge_of(device), "reason": "Wants it open."}
    )
    ask = SupportPin.objects.get(loan=loan)
    supervisor = verified_client(make_agent(loan.lender, role=Membership.Role.SUPERVISOR))
    answer = supervisor.post(
        decide_url(loan, ask), {"approve": "no", "reason": "No payment, no call."}, follow=True
    )
    assert "Decision recorded." in answer.content.decode()
    assert expected_pin(device, challenge_of(device)) not in answer.content.decode()
    ask.refresh_from_db()
    assert ask.status == "rejected"
    rejected = AuditEvent.objects.get(action="collections.support_pin.rejected")
    assert rejected.reason == "No payment, no call."


def test_an_agent_of_another_lender_gets_404_everywhere(
    locked, lender_b, make_agent, verified_client
) -> None:
    device, loan = locked
    verified_client(make_agent(loan.lender)).post(
        pin_url(loan), {"challenge": challenge_of(device), "reason": "Asked."}
    )
    pay_first_installment(loan)
    ask = SupportPin.objects.get(loan=loan)
    stranger = verified_client(make_agent(lender_b, role=Membership.Role.SUPERVISOR))
    assert stranger.get(change_page(loan)).status_code == 404
    assert stranger.get(pin_url(loan)).status_code == 404
    assert (
        stranger.post(pin_url(loan), {"challenge": challenge_of(device), "reason": "x"}).status_code
        == 404
    )
    assert stranger.post(resend_url(loan), {"reason": "x"}).status_code == 404
    assert stranger.post(decide_url(loan, ask), {"approve": "yes", "reason": "x"}).status_code == (
        404
    )
    assert SupportPin.objects.count() == 1
    assert not AuditEvent.objects.filter(action="devices.offline_code.resent").exists()
    # and the read-only list of support PINs shows them only their own lender's
    listing = stranger.get(reverse("admin:collections_supportpin_changelist"))
    assert list(listing.context["cl"].result_list) == []


def test_the_support_pin_list_is_read_only(locked, make_agent, verified_client) -> None:
    device, loan = locked
    client = verified_client(make_agent(loan.lender, role=Membership.Role.LENDER_ADMIN))
    client.post(pin_url(loan), {"challenge": challenge_of(device), "reason": "Asked."})
    ask = SupportPin.objects.get(loan=loan)
    listing = client.get(reverse("admin:collections_supportpin_changelist"))
    assert [row.pk for row in listing.context["cl"].result_list] == [ask.pk]
    change = client.get(reverse("admin:collections_supportpin_change", args=[ask.pk]))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert client.get(reverse("admin:collections_supportpin_add")).status_code == 403


def test_a_loan_without_an_enrolled_phone_gets_a_clear_error(
    lender_a, make_agent, verified_client
) -> None:
    loan = signed_loan(lender_a)  # sold, the phone never enrolled
    client = verified_client(make_agent(lender_a))
    answer = client.post(pin_url(loan), {"challenge": "123456", "reason": "Asked."})
    assert "This loan has no enrolled phone to unlock." in answer.content.decode()
