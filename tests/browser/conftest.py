import os
import re
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
