"""An agent shows a fresh enrollment code in the back office, for their own lender's phones only."""

import pytest
from django.urls import reverse

from apps.devices.models import EnrollmentToken
from apps.lenders.models import Membership
from tests.collections.factories import signed_loan
from tests.devices.factories import phone_registered, valid_imei

pytestmark = pytest.mark.django_db


def test_an_agent_shows_a_fresh_code_in_the_back_office(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    mine = phone_registered(signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y")
    theirs = phone_registered(signed_loan(lender_b), imei=valid_imei(), brand="X", model_name="Y")
    client = verified_client(make_agent(lender_a, role=Membership.Role.AGENT))
    url = reverse("admin:devices_device_enrollment_code", args=[mine.pk])
    response = client.post(url)
    assert response.status_code == 200
    assert b"<svg" in response.content
    assert EnrollmentToken.objects.filter(device=mine).count() == 1
    other = reverse("admin:devices_device_enrollment_code", args=[theirs.pk])
    assert client.post(other).status_code == 404
    assert not EnrollmentToken.objects.filter(device=theirs).exists()
