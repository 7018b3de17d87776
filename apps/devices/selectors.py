from django.db.models import Max

from apps.devices.models import BOUND, Device, LenderKey


def device_status_for_loan(*, loan_id: int, lender_id: int) -> str | None:
    """The live device's status for a loan (what the clerk's page polls), or None."""
    return (
        Device.objects.filter(loan_id=loan_id, lender_id=lender_id)
        .order_by("-created_at")
        .values_list("status", flat=True)
        .first()
    )


def device_imei_in_use(*, imei: str) -> bool:
    """Whether the phone is the collateral of a loan that is not closed."""
    return Device.objects.filter(imei=imei, status__in=BOUND).exists()


def lender_key_version_current(*, lender_id: int) -> int:
    """The version of the lender's state-signing key that new phones get (1 until a rotation)."""
    latest = LenderKey.objects.filter(lender_id=lender_id).aggregate(v=Max("version"))["v"]
    return latest or 1
