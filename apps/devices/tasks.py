from typing import Any

from apps.core.tasks import app_task
from apps.devices.services.key_rotation import device_key_announce
from apps.devices.services.offline import offline_codes_deliver
from apps.devices.services.push import push_relay, push_release_renudge
from apps.devices.services.sync import devices_out_of_sync_record
from apps.integrations.push.base import get_push_gateway


@app_task(name="devices.push_relay", queue="push", bind=True)
def push_relay_task(self: Any, *, follow_up: bool = False) -> None:
    """Started after each commit that queues a nudge, by beat every minute, and by itself
    (``follow_up``) when a retry falls due within the minute."""
    follow_up_in = push_relay(gateway=get_push_gateway(), follow_up=follow_up)
    if follow_up_in is not None and not self.request.is_eager:
        push_relay_task.apply_async(countdown=follow_up_in, kwargs={"follow_up": True})


@app_task(name="devices.device_key_announce", queue="push")
def device_key_announce_task(*, lender_id: int) -> None:
    device_key_announce(lender_id=lender_id)


@app_task(name="devices.push_release_renudge", queue="push")
def push_release_renudge_task() -> None:
    push_release_renudge()


@app_task(name="devices.offline_codes_deliver", queue="push")
def offline_codes_deliver_task() -> dict[str, int]:
    """Started when an unlock code's SMS falls due, and by beat every minute."""
    return offline_codes_deliver()


@app_task(name="devices.devices_out_of_sync_record")
def devices_out_of_sync_record_task() -> int:
    """Beat runs this every five minutes: phones left behind their newest state."""
    return devices_out_of_sync_record()
