"""Enrollment codes and IMEIs: only a code's hash (and the nonce it is made from) is stored, the
live code is shown again until it stops working, a fresh code revokes the old, and an IMEI is
Luhn-checked and bound to one open loan."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.actor import Actor
from apps.devices.errors import DeviceNotPending, ImeiInUse, ImeiInvalid
from apps.devices.keys import enrollment_code
from apps.devices.models import Device, EnrollmentToken
from apps.devices.services import enrollment_token_live_or_mint, enrollment_token_mint
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
    assert first.token != second.token
    assert all(len(m.token) == 22 for m in (first, second))
    assert stored[0].revoked_at is not None
    assert stored[1].revoked_at is None
    assert stored[1].expires_at - stored[1].created_at >= timedelta(hours=23, minutes=59)
    # the code is made from the master key, the row and its nonce: no column holds it
    row = EnrollmentToken.objects.filter(pk=stored[1].pk).values().get()
    assert second.token not in str(row)
    assert second.token == enrollment_code(
        lender_slug=device.lender.slug,
        device_id=device.pk,
        token_id=stored[1].pk,
        nonce=stored[1].nonce,
    )
    assert stored[0].nonce != stored[1].nonce


def minted_events(device) -> int:
    return AuditEvent.objects.filter(
        action="devices.enrollment_token.minted", target_id=str(device.pk)
    ).count()


def test_the_live_code_is_shown_again_and_minted_only_when_there_is_none(device) -> None:
    shown = enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    again = enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    assert again == shown  # the same code, payload and expiry: nothing changed
    assert EnrollmentToken.objects.get().expires_at == shown.expires_at
    assert EnrollmentToken.objects.filter(revoked_at__isnull=True).count() == 1
    assert minted_events(device) == 1  # showing it again is not a new event

    fresh = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    assert fresh.token != shown.token
    assert enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system()) == fresh
    assert minted_events(device) == 2


@pytest.mark.parametrize("end", ["expired", "used", "revoked", "minted_before_derivation"])
def test_a_code_that_no_longer_works_gives_way_to_a_new_one(device, end) -> None:
    old = enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    now = timezone.now()
    rows = EnrollmentToken.objects.filter(device=device)
    if end == "expired":
        rows.update(expires_at=now)
    elif end == "used":
        rows.update(used_at=now)
    elif end == "revoked":
        rows.update(revoked_at=now)
    else:  # a row as stored before codes were derived: a hash and no nonce
        rows.update(nonce="")
    new = enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    assert new.token != old.token
    assert rows.count() == 2
    assert rows.latest("pk").token_hash == hashlib.sha256(new.token.encode()).hexdigest()
    assert minted_events(device) == 2
    if end in ("expired", "minted_before_derivation"):  # left unused: revoked by the new one
        assert rows.earliest("pk").revoked_at is not None


def test_a_code_made_under_another_master_key_is_not_shown(device, settings) -> None:
    old = enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    settings.DEVICE_SIGNING_MASTER_KEY = "another-master-key"
    new = enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    assert new.token != old.token
    assert EnrollmentToken.objects.filter(revoked_at__isnull=True).count() == 1


def test_a_phone_that_is_not_waiting_gets_no_code(device) -> None:
    device.status = Device.Status.RELEASED
    device.save(update_fields=["status"])
    with pytest.raises(DeviceNotPending):
        enrollment_token_live_or_mint(device_id=device.pk, actor=Actor.system())
    assert not EnrollmentToken.objects.exists()


def test_an_imei_is_luhn_checked_and_bound_to_one_open_loan(lender_a) -> None:
    loan = signed_loan(lender_a)
    with pytest.raises(ImeiInvalid):
        phone_registered(loan, imei="352099001761482", brand="X", model_name="Y")
    imei = valid_imei()
    phone_registered(signed_loan(lender_a), imei=imei, brand="X", model_name="Y")
    loan = signed_loan(lender_a)
    with pytest.raises(ImeiInUse):
        phone_registered(loan, imei=imei, brand="X", model_name="Y")
