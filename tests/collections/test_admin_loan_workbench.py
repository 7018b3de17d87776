"""The loan page's manual actions: promise, hardship pause, legal hold, lift; who may do what."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.models import Loan, LoanPause, LoanStageChange
from apps.collections.selectors import loan_days_overdue
from apps.collections.services import loan_stage_sweep
from apps.devices.models import DeviceState
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


def act(loan: Loan, action: str) -> str:
    return reverse("admin:collections_loan_act", args=[loan.pk, action])


@pytest.fixture
def locked(lender_a):
    """A loan 45 days late whose phone the morning sweep locked."""
    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=75))
    noticed(device.loan)  # told of the lock ahead
    loan_stage_sweep(
        lender_id=lender_a.pk,
        business_date=lender_local_date(lender=lender_a),
        id_from=0,
        id_to=10**12,
    )
    loan = Loan.objects.get(pk=device.loan_id)
    assert loan.stage == "lock"
    return loan


def test_an_agent_records_a_promise_and_the_phone_steps_down(
    lender_a, make_agent, verified_client, locked
) -> None:
    agent = make_agent(lender_a)
    client = verified_client(agent)
    until = lender_local_date(lender=lender_a) + timedelta(days=5)
    response = client.post(
        act(locked, "promise"),
        {"until": until.isoformat(), "amount": "900", "reason": "Salary on Friday."},
    )
    assert response.status_code == 302
    locked.refresh_from_db()
    assert locked.stage == "reminder"
    pause = LoanPause.objects.get(loan=locked)
    assert (pause.kind, pause.status, pause.ends_on, pause.promised_amount) == (
        "promise",
        "active",
        until,
        900,
    )
    event = AuditEvent.objects.get(action="collections.pause.opened")
    assert (event.actor_type, event.actor_id, event.reason) == (
        "agent",
        str(agent.pk),
        "Salary on Friday.",
    )
    page = client.get(reverse("admin:collections_loan_change", args=[locked.pk]))
    assert b"Salary on Friday." in page.content  # the pauses on the loan's page
    assert b"Restriction stage history" in page.content


def test_a_bad_promise_is_explained_and_changes_nothing(
    lender_a, make_agent, verified_client, locked
) -> None:
    client = verified_client(make_agent(lender_a))
    too_far = lender_local_date(lender=lender_a) + timedelta(days=40)
    response = client.post(
        act(locked, "promise"), {"until": too_far.isoformat(), "reason": "Later."}
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    response = client.post(act(locked, "promise"), {"until": too_far.isoformat(), "reason": ""})
    assert "reason" in response.context["form"].errors
    locked.refresh_from_db()
    assert (locked.stage, LoanPause.objects.count()) == ("lock", 0)


def test_a_hardship_pause_is_requested_by_an_agent_and_decided_by_a_supervisor(
    lender_a, make_agent, verified_client, locked
) -> None:
    agent = verified_client(make_agent(lender_a))
    until = lender_local_date(lender=lender_a) + timedelta(days=30)
    agent.post(act(locked, "hardship"), {"until": until.isoformat(), "reason": "Hospital."})
    pause = LoanPause.objects.get(loan=locked)
    decide = reverse("admin:collections_loan_pause_decide", args=[locked.pk, pause.pk])
    assert agent.get(decide).status_code == 403
    assert agent.get(act(locked, "legal-hold")).status_code == 403
    supervisor = verified_client(make_agent(lender_a, role=Membership.Role.SUPERVISOR))
    page = supervisor.get(reverse("admin:collections_loan_change", args=[locked.pk]))
    assert decide.encode() in page.content  # the link to decide, on the loan's page
    assert "Asked because: Hospital." in supervisor.get(decide).content.decode()
    assert supervisor.post(decide, {"approve": "yes", "reason": "Papers seen."}).status_code == 302
    pause.refresh_from_db()
    locked.refresh_from_db()
    assert (pause.status, locked.stage) == ("active", "reminder")


def test_an_agent_lifts_a_restriction_with_a_reason(
    lender_a, make_agent, verified_client, locked
) -> None:
    client = verified_client(make_agent(lender_a))
    assert (
        client.post(act(locked, "lift"), {"reason": ""}).status_code == 200
    )  # a reason is required
    assert (
        client.post(
            act(locked, "lift"), {"reason": "Wrongly locked: paid at the shop."}
        ).status_code
        == 302
    )
    locked.refresh_from_db()
    assert locked.stage == "none"
    change = LoanStageChange.objects.filter(loan=locked).latest("id")
    assert (change.cause, change.from_stage, change.to_stage) == ("agent", "lock", "none")
    assert DeviceState.objects.filter(device__loan=locked).latest("version").level == "normal"


def test_another_lenders_agent_cannot_act_on_the_loan(
    lender_a, lender_b, make_agent, verified_client, locked
) -> None:
    outsider = verified_client(make_agent(lender_b, role=Membership.Role.LENDER_ADMIN))
    for action in ("promise", "hardship", "legal-hold", "lift"):
        assert outsider.get(act(locked, action)).status_code == 404
        assert outsider.post(act(locked, action), {"reason": "x"}).status_code == 404
    locked.refresh_from_db()
    assert locked.stage == "lock"


def test_the_loan_page_lists_its_own_latest_messages(
    lender_a, lender_b, make_agent, verified_client, locked
) -> None:
    from apps.notifications.models import Notification
    from apps.notifications.services import Draft, notifications_queue

    mine = Draft(
        customer_id=locked.customer_id,
        loan_id=locked.pk,
        kind="payment",
        locale="en",
        body="Receipt for this loan.",
        dedupe_key="payment:mine",
    )
    notifications_queue(lender=lender_a, drafts=[mine])
    other, _, _ = enrolled_phone(lender_b)
    notifications_queue(
        lender=lender_b,
        drafts=[
            Draft(
                customer_id=other.loan.customer_id,
                loan_id=other.loan_id,
                kind="payment",
                locale="en",
                body=f"Someone else's {n}.",
                dedupe_key=f"payment:other-{n}",
            )
            for n in range(25)
        ],
    )
    # how it went: by SMS, and the provider reported it delivered
    Notification.objects.filter(dedupe_key="payment:mine").update(
        status="sms", channel="sms", provider="twilio", provider_ref="SM1", delivery="delivered"
    )
    page = verified_client(make_agent(lender_a)).get(
        reverse("admin:collections_loan_change", args=[locked.pk])
    )
    assert b"Receipt for this loan." in page.content
    assert b"Someone else" not in page.content
    html = page.content.decode()
    for shown in ("Channel", "Delivery", "Sent by SMS", "Delivered"):
        assert shown in html


def test_the_loan_page_shows_the_phone_its_sync_and_the_loans_audit_trail(
    lender_a, make_agent, verified_client, locked
) -> None:
    device = locked.devices.get()
    page = verified_client(make_agent(lender_a)).get(
        reverse("admin:collections_loan_change", args=[locked.pk])
    )
    html = page.content.decode()
    assert f"IMEI {device.imei}" in html
    assert (
        f"should be on v{device.desired_version} · acknowledged v{device.acked_version} · behind for 0:00:"
        in html
    )
    trail = html[html.index('<table class="audit-trail">') :]
    assert "collections.loan.stage_changed" in trail
    assert "customers.consent.recorded" in trail
    assert "devices.device.enrolled" in trail


def test_the_header_says_a_phone_never_enrolled_cannot_be_restricted(
    lender_a, make_agent, verified_client
) -> None:
    """A loan 50 days late whose phone never enrolled: its stage may read "Locked" (the
    ladder's), but the header says what the phone really is, the customer's number is a
    call link, the consent reads as a consent, and the product's terms fold away."""
    from tests.collections.factories import signed_loan
    from tests.devices.factories import phone_registered, valid_imei

    loan = signed_loan(lender_a, signed_at=timezone.now() - timedelta(days=50))
    phone_registered(loan, imei=valid_imei(), brand="Tecno", model_name="Spark")
    Loan.objects.filter(pk=loan.pk).update(stage="lock")
    client = verified_client(make_agent(lender_a))
    page = client.get(reverse("admin:collections_loan_change", args=[loan.pk])).content.decode()
    header = page.split('id="loan-header"')[1].split("</section>")[0]
    assert 'data-state="not_enrolled" class="phone-not-enrolled"' in header
    assert "Not enrolled: restrictions cannot apply" in header
    phone = header.split('id="glance-phone"')[1].split("</dd>")[0]
    assert "Locked" not in phone
    assert f'href="tel:{loan.customer.phone}"' in header
    days = int(header.split('id="glance-days-late"')[1].split(">")[1].split("<")[0])
    assert days == loan_days_overdue(loan=loan) > 0
    assert "ConsentRecord object" not in page
    assert "One-time code sent by SMS" in page or "Demo data" in page
    assert (
        "<details><summary>Product settings</summary>" in page.replace("\n", "").replace("  ", "")
        or "collapse" in page.split("Product settings")[0][-300:]
    )


def test_an_action_the_rules_refuse_says_why_before_a_reason_is_typed(
    lender_a, make_agent, verified_client
) -> None:
    """A loan not yet late: no promise (nothing overdue) and no manual lock, each refused
    with its service's own words on the loan's header and on the action's page, which
    shows no form to type a reason into; a late one is offered both."""
    from apps.collections.errors import ManualLockNotAllowed, NothingOverdue

    current, _, _ = enrolled_phone(lender_a)
    client = verified_client(make_agent(lender_a))
    page = client.get(reverse("admin:collections_loan_change", args=[current.loan_id])).content
    page = page.decode()
    why_lock = page.split('id="why-lock"')[1].split("</small>")[0]
    assert str(ManualLockNotAllowed.default_message)[:40] in why_lock.replace("&#x27;", "'")
    assert 'id="act-lock" class="action-refused"' in page
    assert str(NothingOverdue.default_message)[:30] in page.split('id="why-promise"')[1]
    refused = client.get(act(current.loan, "lock")).content.decode()
    assert 'id="action-refused"' in refused
    assert 'id="loan-action-form"' not in refused
    late, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=75))
    noticed(late.loan)
    page = client.get(reverse("admin:collections_loan_change", args=[late.loan_id])).content
    page = page.decode()
    assert f'id="act-promise" class="button" href="{act(late.loan, "promise")}"' in page
    assert f'id="act-lock" class="button" href="{act(late.loan, "lock")}"' in page
    assert 'id="loan-action-form"' in client.get(act(late.loan, "lock")).content.decode()
