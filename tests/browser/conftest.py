import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from tests.waiting import wait_for

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def save_screenshot(page, name: str) -> Path | None:
    """Save a full-page screenshot into docs/screenshots/ under `make screenshots`."""
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        return None
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = DOCS_SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot(page, tmp_path):
    """Save a full-page screenshot; into docs/screenshots/ under `make screenshots`."""
    folder = DOCS_SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path

    def take(name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def admin_log_in(page, url: str, user) -> None:
    """Open ``url`` in the back office as ``user``: password, then the authenticator's code.
    Returns once ``url`` has loaded.

    Browser steps in these tests wait for the page an action leads to (``wait_for_url``, or
    an element or attribute of the new page when the URL stays the same), never for "the
    next navigation" begun around the action, which can be the page being left."""
    from tests.accounts.factories import PASSWORD, TOTPDeviceFactory
    from tests.conftest import current_code

    totp = TOTPDeviceFactory(user=user)
    page.goto(url)
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.fill("#id_otp_token", current_code(totp))
    page.click("#otp-form input[type=submit]")
    page.wait_for_url(url)


def texted_code(sms_outbox: list[tuple[str, str]], sent_before: int) -> str:
    """The six-digit code in the first SMS after the ``sent_before`` already in the outbox.

    Codes leave through the outbox and a worker, so the page can answer before the message
    is sent: wait for it rather than read an outbox the worker has not reached yet."""
    wait_for(lambda: len(sms_outbox) > sent_before)
    return re.search(r"\b(\d{6})\b", sms_outbox[sent_before][1]).group(1)


@contextmanager
def late_phone_for(lender, *, live_server, settings, fake_fcm) -> Iterator[tuple]:
    """A phone sold 50 days ago on a loan of ``lender``, enrolled from its QR code, its apps
    blocked by this morning's sweep: the agent simulator listens for pushes and checks in
    rarely. Yields the loan and the simulator."""
    from django.utils import timezone

    from apps.collections.services import loan_stage_sweep
    from apps.core.actor import Actor
    from apps.devices.provisioning import provisioning_qr_png
    from apps.devices.services import enrollment_token_mint
    from apps.lenders.selectors import lender_local_date
    from tests.collections.factories import noticed, signed_loan
    from tests.devices.factories import phone_registered, valid_imei
    from tools.agent_sim import Agent

    settings.AGENT_API_BASE_URL = f"{live_server.url}/api/agent/v1/"
    loan = signed_loan(lender, signed_at=timezone.now() - timedelta(days=50))
    device = phone_registered(loan, imei=valid_imei(), brand="Tecno", model_name="Spark 20")
    minted = enrollment_token_mint(device_id=device.pk, actor=Actor.system())
    agent = Agent.from_qr(provisioning_qr_png(minted.payload), imei=device.imei)
    agent.enroll()
    fake_fcm.subscribe(agent.fcm_token, agent.on_nudge)
    thread = threading.Thread(target=lambda: agent.run(interval=60.0), daemon=True)
    thread.start()
    wait_for(lambda: agent.phone.version == 1)
    noticed(loan)  # told of the lock ahead
    loan_stage_sweep(
        lender_id=lender.pk,
        business_date=lender_local_date(lender=lender),
        id_from=0,
        id_to=10**12,
    )
    wait_for(lambda: agent.phone.level == "block_apps")
    try:
        yield loan, agent
    finally:
        agent.stopped.set()
        agent.nudged.set()
        thread.join(timeout=10)


def customer_log_in(page, live_server, lender, customer, sms_outbox) -> None:
    """Log ``customer`` in on their page with the code texted to them."""
    page.goto(f"{live_server.url}/my/{lender.slug}/login/")
    page.fill("#id_phone", customer.phone)
    sent = len(sms_outbox)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code/")
    page.fill("#id_code", texted_code(sms_outbox, sent))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/my/{lender.slug}/")
