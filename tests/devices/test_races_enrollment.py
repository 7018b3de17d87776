"""Two phones scanning one enrollment code at once: one enrolls."""

import threading

import pytest
from django.db import connection
from django.test import Client

from apps.core.actor import Actor
from apps.devices.services import enrollment_token_mint
from tests.collections.factories import signed_loan
from tests.devices.enrollment import enroll
from tests.devices.factories import phone_registered, valid_imei

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_two_phones_scanning_one_code_at_once_enroll_one(lender_a) -> None:
    device = phone_registered(signed_loan(lender_a), imei=valid_imei(), brand="X", model_name="Y")
    token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
    barrier, statuses = threading.Barrier(2), []

    def scan() -> None:
        barrier.wait()
        statuses.append(enroll(Client(), token, device.imei).status_code)
        connection.close()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409]
