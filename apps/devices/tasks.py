from typing import Any

from apps.core.tasks import app_task


@app_task(name="devices.push_relay", queue="push", bind=True)
def push_relay_task(self: Any) -> None:
    """Send the due nudges; start again when the next retry falls due.

    Started after each commit that queues a nudge and by beat every minute,
    so a broker outage or a lost task only delays a nudge.
    """
    from apps.devices.services.push import push_next_due_in, push_relay_run
    from apps.integrations.push.base import get_push_gateway

    push_relay_run(gateway=get_push_gateway())
    due_in = push_next_due_in()
    if due_in is not None and due_in < 60 and not self.request.is_eager:  # later: beat's run
        push_relay_task.apply_async(countdown=due_in)


@app_task(name="devices.device_key_announce", queue="push")
def device_key_announce_task(*, lender_id: int) -> None:
    from apps.devices.services.state import device_key_announce

    device_key_announce(lender_id=lender_id)


@app_task(name="devices.push_release_renudge", queue="push")
def push_release_renudge_task() -> None:
    from apps.devices.services.push import push_release_renudge

    push_release_renudge()
