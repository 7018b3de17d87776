"""Fixtures of the devices tests."""

import pytest

from tests.collections.factories import signed_loan
from tests.devices.factories import phone_registered, valid_imei


@pytest.fixture
def device(lender_a):
    return phone_registered(
        signed_loan(lender_a), imei=valid_imei(), brand="Tecno", model_name="Spark 20"
    )
