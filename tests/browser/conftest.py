import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# npm's axe-core, installed by tools/ensure_services.sh (`make test`, `make services`) into a
# folder git ignores: 560 kB of minified third-party code is not ours to keep in the history.
AXE_JS = ROOT / ".node" / "node_modules" / "axe-core" / "axe.min.js"
AXE_FAILS_ON = ("serious", "critical")
# addresses not opened again at the end of a test: a login link works once
SKIP_ON_RETURN = ("/link/",)
# Our pages only: the loopback fakes of Stripe's checkout or Daraja stand for pages we do not
# write, and iframes would wait for an axe that is not in them.
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"], iframes: false});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
    targets: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
  }));
}"""
BACK_OFFICE_VIEWPORT = {"width": 1366, "height": 900}
PHONE_VIEWPORT = {"width": 360, "height": 780}
_axe_counts: dict[str, tuple[int, int]] = {}  # page path: (serious or critical, all)


def _axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(
            f"axe-core is missing at {AXE_JS.relative_to(ROOT)}: run `make services` "
            "(tools/ensure_services.sh installs it)"
        )
    return AXE_JS.read_text()


class AxeAudit:
    """axe-core on every page a test's browser shows. A page is audited as it is when the
    test takes a screenshot of it and when its context closes; then each other address the
    test's pages showed (the main frame's) is opened again in the same context and audited.
    (Auditing a page just before the browser leaves it cannot work: Chromium runs no script
    in a page whose navigation is held.) ``pages`` lists (address, violations)."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.origins = origins
        self.pages: list[tuple[str, list[dict]]] = []
        self.seen: dict[object, list[str]] = {}  # context: addresses shown, in order

    def ours(self, url: str) -> bool:
        return any(url.startswith(origin) for origin in self.origins) and not any(
            part in url for part in SKIP_ON_RETURN
        )

    def audit(self, page) -> None:
        url = page.url
        if page.is_closed() or not self.ours(url):
            return
        if not page.evaluate("typeof axe !== 'undefined'"):
            page.evaluate(_axe_source())
        self.pages.append((url, page.evaluate(AXE_RUN)))

    def watch(self, context) -> None:
        shown = self.seen.setdefault(context, [])

        def on_page(page) -> None:
            _audit_of_page[page] = self
            page.on(
                "framenavigated",
                lambda frame: frame.parent_frame is None and shown.append(frame.url),
            )

        context.on("page", on_page)

    def finish(self, context) -> None:
        """Audit the context's open pages, then revisit the addresses not audited yet."""
        for open_page in context.pages:
            with suppress(PlaywrightError):
                self.audit(open_page)
        done = {url for url, _ in self.pages}
        missing = [url for url in dict.fromkeys(self.seen.get(context, [])) if url not in done]
        missing = [url for url in missing if self.ours(url)]
        if not missing:
            return
        page = context.new_page()
        for url in missing:
            with suppress(PlaywrightError):
                page.goto(url)
                self.audit(page)

    def serious(self) -> list[str]:
        return [
            f"{url}: {v['impact']} {v['id']} ({v['help']}) x{v['nodes']} at {v['targets']}"
            for url, violations in self.pages
            for v in violations
            if v["impact"] in AXE_FAILS_ON
        ]


_audit_of_page: dict[object, AxeAudit] = {}


def axe_audit(page) -> None:
    """Audit ``page`` as it is now (the screenshots do)."""
    audit = _audit_of_page.get(page)
    if audit is not None:
        audit.audit(page)


class _AuditedContext:
    """A Playwright context whose pages axe audits; ``close`` audits the pages still open."""

    def __init__(self, context, axe: AxeAudit) -> None:
        self._context, self._axe = context, axe
        axe.watch(context)

    def close(self) -> None:
        self._axe.finish(self._context)
        self._context.close()

    def __getattr__(self, name: str):
        return getattr(self._context, name)


class _AuditedBrowser:
    """The session's browser, handing out contexts that axe audits."""

    def __init__(self, browser, axe: AxeAudit) -> None:
        self._browser, self._axe = browser, axe
        self.contexts: list[_AuditedContext] = []

    def new_context(self, **options) -> _AuditedContext:
        context = _AuditedContext(self._browser.new_context(**options), self._axe)
        self.contexts.append(context)
        return context

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


def _page_key(url: str) -> str:
    """The page's address without host, query and ids, so one page's visits add up."""
    path = re.sub(r"^https?://[^/]+", "", url).split("?")[0].split("#")[0]
    path = re.sub(r"/\d+/", "/<id>/", path)
    return re.sub(r"/[^/]{25,}/", "/<token>/", path)


@pytest.fixture
def axe(request) -> AxeAudit:
    """The axe audit of this test's pages: the test fails on a serious or critical violation
    in any of them, and each page's count is printed (and summed up at the end of the run)."""
    origins = ("http://localhost:", "http://127.0.0.1:")
    if "live_server" in request.fixturenames:
        origins = (request.getfixturevalue("live_server").url,)
    audit = AxeAudit(origins)
    yield audit
    lines = []
    for url, violations in audit.pages:
        serious = sum(1 for v in violations if v["impact"] in AXE_FAILS_ON)
        key = _page_key(url)
        before = _axe_counts.get(key, (0, 0))
        _axe_counts[key] = (max(before[0], serious), max(before[1], len(violations)))
        rules = " ".join(f"{v['id']}({v['impact']})" for v in violations)
        lines.append(f"{serious} serious or critical, {len(violations)} in all: {url} {rules}")
    request.node.add_report_section("teardown", "axe", "\n".join(lines))
    failures = audit.serious()
    if failures and not os.environ.get("AXE_REPORT_ONLY"):
        pytest.fail("axe-core found serious or critical violations:\n" + "\n".join(failures))


@pytest.fixture
def browser(browser, axe):
    """The session's Chromium, its contexts audited by axe (closed at the end of the test)."""
    audited = _AuditedBrowser(browser, axe)
    yield audited
    for context in audited.contexts:
        if context.pages:
            context.close()
    _audit_of_page.clear()


def pytest_terminal_summary(terminalreporter) -> None:
    if not _axe_counts:
        return
    terminalreporter.section("axe-core: violations per page (serious or critical / all)")
    for key, (serious, total) in sorted(_axe_counts.items()):
        terminalreporter.write_line(f"{serious:3} / {total:3}  {key}")


@pytest.fixture
def page(browser):
    """A page of the back office's size (1366 x 900)."""
    context = browser.new_context(viewport=BACK_OFFICE_VIEWPORT)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone_page(browser):
    """A page on a phone's browser (360 px wide), the customer's and the clerk's."""
    context = browser.new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def save_screenshot(page, name: str) -> Path | None:
    """Save a full-page screenshot into docs/screenshots/ under `make screenshots`; axe
    audits the page as shown."""
    axe_audit(page)
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
        axe_audit(page)
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


def clerk_log_in(page, live_server, clerk) -> None:
    """Log ``clerk`` in at the counter; returns on the counter's home."""
    from tests.accounts.factories import PASSWORD

    page.goto(f"{live_server.url}/pos/login/")
    page.fill("#id_username", clerk.user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/pos/")


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


def customer_log_in(page, live_server, lender, customer, sms_outbox, language: str = "") -> None:
    """Log ``customer`` in on their page with the code texted to them, first choosing
    ``language`` at the foot of the login page if given."""
    page.goto(f"{live_server.url}/my/{lender.slug}/login/")
    if language:
        page.select_option("#language", language)  # submits itself (site.js)
        page.wait_for_selector(f"html[lang={language}]")
    page.fill("#id_phone", customer.phone)
    sent = len(sms_outbox)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code/")
    page.fill("#id_code", texted_code(sms_outbox, sent))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/my/{lender.slug}/")
