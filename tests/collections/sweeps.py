"""Phones on late loans and the sweep run on them, for the restriction tests."""

from datetime import date, timedelta

from django.utils import timezone

from apps.collections.models import Loan
from apps.collections.services import loan_stage_sweep
from apps.devices.models import Device, DeviceState
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone

ALL = {"id_from": 0, "id_to": 10**12}


def today(lender) -> date:
    return lender_local_date(lender=lender)


def sweep(loan: Loan, on: date):
    return loan_stage_sweep(lender_id=loan.lender_id, business_date=on, **ALL)


def phone_on_loan(lender, *, days_ago: int = 0):
    """An enrolled phone whose loan was signed ``days_ago`` days ago."""
    device, _secret, _key = enrolled_phone(
        lender, signed_at=timezone.now() - timedelta(days=days_ago)
    )
    noticed(device.loan)  # told of the lock ahead: the ladder applies in full
    return device, device.loan


def newest_state(device: Device) -> DeviceState:
    return DeviceState.objects.filter(device=device).order_by("-version").first()
