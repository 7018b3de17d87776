"""The lender's own settings in the back office: its admin changes them, through the service
that validates and audits them; no one else does."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.lenders.models import Membership

pytestmark = pytest.mark.django_db


def test_the_lenders_admin_sets_the_emergency_grace_and_it_is_audited(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    url = reverse("admin:lenders_lender_change", args=[lender_a.pk])
    agent = verified_client(make_agent(lender_a, role=Membership.Role.AGENT))
    assert agent.post(url, {"emergency_grace_hours": "0"}).status_code == 403
    other = verified_client(make_agent(lender_b, role=Membership.Role.LENDER_ADMIN))
    assert other.get(url).status_code == 404
    admin_client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    too_long = admin_client.post(url, {"emergency_grace_hours": "200"})
    assert too_long.status_code == 200  # the form again, with the error
    assert "less than or equal to 72" in too_long.content.decode()
    response = admin_client.post(
        url,
        {"emergency_grace_hours": "0", "message_channels": "push,whatsapp,sms", "name": "Renamed"},
    )
    assert response.status_code == 302
    lender_a.refresh_from_db()
    assert (lender_a.emergency_grace_hours, lender_a.name) == (0, "Lender A")
    event = AuditEvent.objects.get(action="lenders.lender.settings_changed")
    assert event.data == {"old": {"emergency_grace_hours": 24}, "new": {"emergency_grace_hours": 0}}


def test_the_lenders_admin_orders_its_message_channels_each_once(
    lender_a, make_agent, verified_client
) -> None:
    url = reverse("admin:lenders_lender_change", args=[lender_a.pk])
    admin_client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))
    for wrong, error in (
        ("sms,sms", "Name each channel once."),
        ("sms,fax", "fax"),
        ("", "This field is required."),
    ):
        answer = admin_client.post(url, {"emergency_grace_hours": "24", "message_channels": wrong})
        assert answer.status_code == 200
        assert error in answer.content.decode()
    answer = admin_client.post(url, {"emergency_grace_hours": "24", "message_channels": "sms,push"})
    assert answer.status_code == 302
    lender_a.refresh_from_db()
    assert lender_a.message_channels == ["sms", "push"]
    event = AuditEvent.objects.get(action="lenders.lender.settings_changed")
    assert event.data == {
        "old": {"message_channels": ["push", "whatsapp", "sms"]},
        "new": {"message_channels": ["sms", "push"]},
    }
