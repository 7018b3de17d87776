"""A suspension switch: a regulator's order, an outage or a disaster stops new restrictions
at once, for a lender or a country, optionally lowering every current one to reminders."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.errors import (
    RestrictionsSuspended,
    SuspensionAlreadyOpen,
    SuspensionNotAllowed,
)
from apps.collections.models import LoanStageChange
from apps.collections.services import (
    loan_manual_lock_decide,
    loan_manual_lock_request,
    loan_stage_sweep,
    restrictions_resume,
    restrictions_suspend,
)
from apps.core.actor import Actor
from apps.devices.models import DeviceState
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone
from tests.lenders.factories import LenderFactory

pytestmark = pytest.mark.django_db


def late_phone(lender, days_ago=75):
    device, _, _ = enrolled_phone(lender, signed_at=timezone.now() - timedelta(days=days_ago))
    noticed(device.loan)
    return device, device.loan


def sweep(lender):
    on = lender_local_date(lender=lender)
    return loan_stage_sweep(lender_id=lender.pk, business_date=on, id_from=0, id_to=10**12)


def test_the_sweep_raises_nothing_while_a_lender_is_suspended_and_again_once_lifted(
    lender_a, make_agent
) -> None:
    _device, loan = late_phone(lender_a)
    admin = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN)
    suspension = restrictions_suspend(
        user=admin,
        actor=Actor.agent(admin),
        lender_id=lender_a.pk,
        reason="Regulator's order of 5 Dec.",
    )
    assert sweep(lender_a).changes == 0
    loan.refresh_from_db()
    assert loan.stage == "none"
    restrictions_resume(
        suspension_id=suspension.pk, user=admin, actor=Actor.agent(admin), reason="Order withdrawn."
    )
    assert sweep(lender_a).changes == 1
    loan.refresh_from_db()
    assert loan.stage == "lock"
    actions = list(
        AuditEvent.objects.filter(lender=lender_a, action__startswith="collections.restrictions")
        .order_by("seq")
        .values_list("action", "reason")
    )
    assert actions == [
        ("collections.restrictions.suspended", "Regulator's order of 5 Dec."),
        ("collections.restrictions.resumed", "Order withdrawn."),
    ]


def test_lowering_brings_every_restriction_to_reminders_and_tells_the_phones(
    lender_a, operator, django_capture_on_commit_callbacks
) -> None:
    device, loan = late_phone(lender_a)
    sweep(lender_a)
    loan.refresh_from_db()
    assert loan.stage == "lock"
    with django_capture_on_commit_callbacks(execute=True):
        restrictions_suspend(
            user=operator,
            actor=Actor.agent(operator),
            lender_id=lender_a.pk,
            reason="Floods.",
            lower_to_reminder=True,
        )
    loan.refresh_from_db()
    assert loan.stage == "reminder"
    state = DeviceState.objects.filter(device=device).order_by("-version").first()
    assert (state.level, state.document["fallback_level"]) == ("reminder", "reminder")
    change = LoanStageChange.objects.get(loan=loan, cause="suspension")
    assert (change.from_stage, change.to_stage) == ("lock", "reminder")
    assert change.days_overdue > 30


def test_a_country_suspension_holds_every_lender_there_and_no_other(operator) -> None:
    kenyan = LenderFactory(slug="ke-1")
    mexican = LenderFactory(
        slug="mx-1", country="MX", currency="MXN", timezone="America/Mexico_City", locale="es"
    )
    _, ke_loan = late_phone(kenyan)
    _, mx_loan = late_phone(mexican)
    restrictions_suspend(
        user=operator, actor=Actor.agent(operator), country="ke", reason="National emergency."
    )
    sweep(kenyan), sweep(mexican)
    ke_loan.refresh_from_db(), mx_loan.refresh_from_db()
    assert ke_loan.stage == "none"
    assert mx_loan.stage != "none"
    assert (
        AuditEvent.objects.filter(
            lender__isnull=True, action="collections.restrictions.suspended"
        ).count()
        == 1
    )
    assert AuditEvent.objects.filter(
        lender=kenyan, action="collections.restrictions.suspended"
    ).exists()


def test_only_an_operator_suspends_a_country_and_an_admin_only_their_own_lender(
    lender_a, lender_b, make_agent
) -> None:
    admin = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN)
    supervisor = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    for user, scope in (
        (admin, {"country": "KE"}),
        (admin, {"lender_id": lender_b.pk}),
        (supervisor, {"lender_id": lender_a.pk}),
    ):
        with pytest.raises(SuspensionNotAllowed):
            restrictions_suspend(user=user, actor=Actor.agent(user), reason="x", **scope)
    restrictions_suspend(user=admin, actor=Actor.agent(admin), reason="x", lender_id=lender_a.pk)
    with pytest.raises(SuspensionAlreadyOpen):
        restrictions_suspend(
            user=admin, actor=Actor.agent(admin), reason="y", lender_id=lender_a.pk
        )


def test_no_phone_is_locked_by_hand_while_suspended(lender_a, make_agent, operator) -> None:
    _device, loan = late_phone(lender_a)
    agent = make_agent(lender_a)
    supervisor = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    request = loan_manual_lock_request(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        user=agent,
        actor=Actor.agent(agent),
        reason="Not answering.",
    )
    restrictions_suspend(
        user=operator,
        actor=Actor.agent(operator),
        lender_id=lender_a.pk,
        reason="Outage of the payment rail.",
    )
    with pytest.raises(RestrictionsSuspended):
        loan_manual_lock_decide(
            request_id=request.pk,
            lender_id=lender_a.pk,
            approve=True,
            user=supervisor,
            actor=Actor.agent(supervisor),
            reason="Ok.",
        )
    with pytest.raises(RestrictionsSuspended):
        loan_manual_lock_request(
            loan_id=loan.pk,
            lender_id=lender_a.pk,
            user=agent,
            actor=Actor.agent(agent),
            reason="Again.",
        )
    loan.refresh_from_db()
    assert loan.stage != "lock"


def test_a_lender_admin_suspends_and_lifts_in_the_back_office_and_the_dashboard_shows_it(
    lender_a, make_agent, verified_client, admin_prefix
) -> None:
    admin = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN)
    agent = make_agent(lender_a)
    client = verified_client(admin)
    url = f"{admin_prefix}collections/restrictionsuspension/suspend/"
    refused = client.post(url, {"lender": lender_a.pk, "reason": ""})
    assert refused.status_code == 200
    assert b"This field is required" in refused.content
    done = client.post(
        url, {"lender": lender_a.pk, "reason": "Payment rail down.", "lower_to_reminder": "on"}
    )
    assert done.status_code == 302
    suspension = lender_a_suspension(lender_a)
    agent_client = verified_client(agent)
    dashboard = agent_client.get(f"{admin_prefix}collections/loan/portfolio/")
    assert "New restrictions are suspended since" in dashboard.content.decode()
    assert "Payment rail down." in dashboard.content.decode()
    assert agent_client.get(url).status_code == 403  # an agent may not suspend
    lifted = client.post(
        f"{admin_prefix}collections/restrictionsuspension/{suspension.pk}/lift/",
        {"reason": "Rail back."},
    )
    assert lifted.status_code == 302
    suspension.refresh_from_db()
    assert (suspension.lifted_by, suspension.lift_reason) == (admin, "Rail back.")
    dashboard = agent_client.get(f"{admin_prefix}collections/loan/portfolio/")
    assert "New restrictions are suspended" not in dashboard.content.decode()


def lender_a_suspension(lender):
    from apps.collections.models import RestrictionSuspension

    return RestrictionSuspension.objects.get(lender=lender)


def test_a_lender_admin_cannot_lift_an_operators_suspension(lender_a, make_agent, operator):
    admin = make_agent(lender_a, role=Membership.Role.LENDER_ADMIN)
    ordered = restrictions_suspend(
        user=operator,
        actor=Actor.agent(operator),
        lender_id=lender_a.pk,
        reason="Regulator's order.",
    )
    with pytest.raises(SuspensionNotAllowed):
        restrictions_resume(
            suspension_id=ordered.pk, user=admin, actor=Actor.agent(admin), reason="We disagree."
        )
    restrictions_resume(
        suspension_id=ordered.pk, user=operator, actor=Actor.agent(operator), reason="Order lifted."
    )


def test_without_lowering_every_restricted_phone_holds_offline_at_its_stage(
    lender_a, operator, django_capture_on_commit_callbacks
) -> None:
    device, loan = late_phone(lender_a, days_ago=57)  # about 26 days late: blocked apps
    sweep(lender_a)
    loan.refresh_from_db()
    before = DeviceState.objects.filter(device=device).order_by("-version").first()
    assert (before.level, before.document["fallback_level"]) == ("block_apps", "lock")
    with django_capture_on_commit_callbacks(execute=True):
        restrictions_suspend(
            user=operator, actor=Actor.agent(operator), lender_id=lender_a.pk, reason="Outage."
        )
    loan.refresh_from_db()
    assert loan.stage == "block_apps"  # nothing lowered
    held = DeviceState.objects.filter(device=device).order_by("-version").first()
    assert held.version == before.version + 1
    assert (held.level, held.document["fallback_level"]) == ("block_apps", "block_apps")
