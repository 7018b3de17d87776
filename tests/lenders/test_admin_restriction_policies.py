"""Restriction policies in the back office: versions and their stages are shown, never edited."""

import pytest
from django.urls import reverse

from apps.lenders.models import Membership
from tests.lenders.ladders import create, ladder

pytestmark = pytest.mark.django_db


def test_agent_sees_a_version_with_its_stages_read_only_when_opening_it_in_the_admin(
    lender_a, make_agent, verified_client
) -> None:
    version = create(lender_a, ladder(s3={"blocked_packages": ("com.example.casino",)}))
    client = verified_client(make_agent(lender_a, role=Membership.Role.LENDER_ADMIN))

    page = client.get(reverse("admin:lenders_restrictionpolicyversion_change", args=[version.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "com.example.casino" in html
    assert "Full lock" in html
    assert 'name="stages-0-days_overdue"' not in html  # shown, not editable
    policy_page = client.get(
        reverse("admin:lenders_restrictionpolicy_change", args=[version.policy_id])
    )
    assert "day 30: Full lock" in policy_page.content.decode()
    for name in ("restrictionpolicy", "restrictionpolicyversion"):
        assert client.get(reverse(f"admin:lenders_{name}_add")).status_code == 403
