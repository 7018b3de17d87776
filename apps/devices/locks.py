from typing import Any

from apps.core.sql import array_literal
from apps.devices.errors import DeviceNotFound
from apps.devices.models import Device, EnrollmentToken
from apps.devices.sql import DEVICES_LOCK, DEVICES_LOCK_FOR_LOANS


def device_lock(*, device_id: int) -> Device:
    device = Device.objects.select_for_update(of=("self",)).filter(pk=device_id).first()
    if device is None:
        raise DeviceNotFound(device_id=device_id)
    return device


def enrollment_token_lock_by_hash(*, token_hash: str) -> EnrollmentToken | None:
    """Lock a token row (then its device) so two phones scanning one code enroll once."""
    return (
        EnrollmentToken.objects.select_for_update(of=("self",))
        .select_related("device", "device__lender", "device__loan")
        .filter(token_hash=token_hash)
        .first()
    )


def devices_lock(cursor: Any, *, device_ids: list[int]) -> None:
    """Lock many device rows in id order (the set-based writers take this first)."""
    cursor.execute(DEVICES_LOCK, [array_literal(device_ids)])


def devices_lock_for_loans(cursor: Any, *, loan_ids: list[int]) -> None:
    """Lock every phone row of ``loan_ids`` in id order (after the loans and their installments,
    before the audit chain: the global order). For a writer that holds the loans and will
    change their phones' states further on, so no audit write of its own comes between."""
    cursor.execute(DEVICES_LOCK_FOR_LOANS, [array_literal(loan_ids)])
