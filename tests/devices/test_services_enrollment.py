"""Enrollment codes and IMEIs: only a code's hash is stored, a fresh code revokes the old, and
an IMEI is Luhn-checked and bound to one open loan."""

import hashlib
from datetime import timedelta

import pytest

from apps.core.actor import Actor
from apps.devices.errors import ImeiInUse, ImeiInvalid
from apps.devices.models import EnrollmentToken
from apps.devices.services import enrollment_token_mint
from tests.collections.factories import signed_loan
from tests.devices.factories import phone_registered, valid_imei

pytestmark = pytest.mark.django_db


def test_only_the_tokens_hash_is_stored_and_a_fresh_code_revokes_the_old(device) -> None:
    first = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    second = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    stored = list(EnrollmentToken.objects.order_by("id"))
    assert [t.token_hash for t in stored] == [
        hashlib.sha256(m.token.encode()).hexdigest() for m in (first, second)
    ]
    assert stored[0].revoked_at is not None
    assert stored[1].revoked_at is None
    assert stored[1].expires_at - stored[1].created_at >= timedelta(hours=23, minutes=59)


def test_an_imei_is_luhn_checked_and_bound_to_one_open_loan(lender_a) -> None:
    loan = signed_loan(lender_a)
    with pytest.raises(ImeiInvalid):
        phone_registered(loan, imei="352099001761482", brand="X", model_name="Y")
    imei = valid_imei()
    phone_registered(signed_loan(lender_a), imei=imei, brand="X", model_name="Y")
    loan = signed_loan(lender_a)
    with pytest.raises(ImeiInUse):
        phone_registered(loan, imei=imei, brand="X", model_name="Y")
