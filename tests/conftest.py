from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import User
from apps.lenders.models import Lender, Membership
from tests.accounts.factories import PASSWORD, OperatorFactory, TOTPDeviceFactory, UserFactory
from tests.lenders.factories import LenderFactory, MembershipFactory

# the providers' loopback fakes, as fixtures (tests/collections/daraja.py, stripe.py,
# tests/integrations/whatsapp.py, messaging.py)
pytest_plugins = [
    "tests.collections.daraja",
    "tests.collections.stripe",
    "tests.integrations.whatsapp",
    "tests.integrations.messaging",
    "tests.integrations.webhooks",
]


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


@pytest.fixture
def lender_a() -> Lender:
    return LenderFactory(slug="lender-a", name="Lender A")


@pytest.fixture
def lender_b() -> Lender:
    return LenderFactory(
        slug="lender-b",
        name="Lender B",
        country="MX",
        currency="MXN",
        timezone="America/Mexico_City",
        locale="es",
    )


@pytest.fixture
def make_agent() -> Callable[..., User]:
    def make(lender: Lender, role: str = Membership.Role.AGENT, **kwargs: object) -> User:
        user = UserFactory(**kwargs)
        MembershipFactory(user=user, lender=lender, role=role)
        return user

    return make


@pytest.fixture
def operator() -> User:
    return OperatorFactory(username="operator")


@pytest.fixture
def verified_client() -> Callable[[User], Client]:
    """A client logged in as ``user`` through the real password and OTP steps."""

    def login(user: User) -> Client:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDeviceFactory(
            user=user
        )
        client = Client()
        login_url = reverse("admin:login")
        response = client.post(
            login_url, {"username": user.username, "password": PASSWORD, "next": "/"}
        )
        assert response.status_code == 302, response.content[:500]
        response = client.post(login_url, {"otp_token": current_code(device), "next": "/"})
        assert response.status_code == 302, response.content[:500]
        return client

    return login


@pytest.fixture
def admin_prefix() -> str:
    return "/" + settings.ADMIN_URL


@pytest.fixture(autouse=True)
def sms_outbox() -> Iterator[list[tuple[str, str]]]:
    """The fake SMS gateway's outbox, empty at the start of each test; a gateway a test
    took down is up again after it, whether it passed or not."""
    from tests.fakes.sms import FakeSmsGateway

    FakeSmsGateway.outbox.clear()
    FakeSmsGateway.down = False
    yield FakeSmsGateway.outbox
    FakeSmsGateway.down = False


@pytest.fixture
def fake_fcm(tmp_path, settings):
    """A loopback FCM (token endpoint and v1 send API) that firebase-admin really talks to."""
    from apps.integrations.push.base import get_push_gateway
    from tests.fakes.fcm import FakeFcm, service_account_file

    fake = FakeFcm().start()
    settings.FCM_CREDENTIALS_FILE = str(
        service_account_file(tmp_path / "fcm.json", token_uri=fake.token_uri)
    )
    settings.FCM_API_BASE = fake.base_url
    get_push_gateway.cache_clear()
    yield fake
    get_push_gateway.cache_clear()
    fake.stop()


@pytest.fixture
def redis_worker():
    """A real Celery worker consuming from Redis, in a thread of this process."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.conf.task_always_eager = False
    with app.connection_for_write() as conn:
        for queue in settings.TASK_QUEUE_NAMES:
            conn.default_channel.queue_purge(queue)
    try:
        with start_worker(
            app,
            pool="solo",
            perform_ping_check=False,
            loglevel="WARNING",
            queues=list(settings.TASK_QUEUE_NAMES),
            shutdown_timeout=10,
        ):
            yield
    finally:
        app.conf.task_always_eager = True


def _pay_due(loan, *, at, ack_after):
    """Pay every installment due by ``at``, then the phone acknowledges its new state."""
    import time_machine

    from apps.collections.services import payment_record
    from apps.core.actor import Actor
    from apps.core.money import Money
    from apps.devices.models import Device
    from apps.devices.services import device_ack
    from apps.lenders.selectors import lender_local_date

    with time_machine.travel(at, tick=False):
        due = [
            i
            for i in loan.installments.all()
            if i.due_date <= lender_local_date(lender=loan.lender)
        ]
        payment_record(
            loan_id=loan.pk,
            amount=Money(sum(i.total_due for i in due), loan.currency),
            channel="manual",
            provider="manual",
            provider_ref=f"pay-{loan.pk}",
            received_at=at,
            actor=Actor.system(),
            reason="Paid at the shop.",
        )
    device = Device.objects.get(loan=loan)
    with time_machine.travel(at + ack_after, tick=False):
        device_ack(
            device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
        )


@pytest.fixture
def book(lender_a):
    """A portfolio of six loans for the dashboard (tests/collections/test_portfolio.py and
    test_admin_portfolio.py): A new, E ~2 weeks late, F ~5 weeks, C ~11 weeks; B and G were late
    10 days ago (the sweep restricted them) and paid 7 and 5 days ago, their phones acking after
    30 s and 90 s."""
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from apps.collections.services import loan_stage_sweep
    from apps.lenders.selectors import lender_local_date
    from tests.devices.factories import enrolled_phone

    now = timezone.now()
    loans = {
        name: enrolled_phone(lender_a, signed_at=now - timedelta(days=days))[0].loan
        for name, days in {"A": 10, "B": 55, "E": 45, "F": 70, "C": 110, "G": 110}.items()
    }
    with time_machine.travel(now - timedelta(days=10), tick=False):
        loan_stage_sweep(
            lender_id=lender_a.pk,
            business_date=lender_local_date(lender=lender_a),
            id_from=0,
            id_to=10**12,
        )
    _pay_due(loans["B"], at=now - timedelta(days=7), ack_after=timedelta(seconds=30))
    _pay_due(loans["G"], at=now - timedelta(days=5), ack_after=timedelta(seconds=90))
    for loan in loans.values():
        loan.refresh_from_db()
    return loans


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: rate-limit counters and one-use nonces live there."""
    from django.core.cache import cache

    cache.clear()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright, one for the whole run: Playwright's sync
    API keeps an event loop in this thread while it is open, so a second one cannot start."""
    import os

    from playwright.sync_api import sync_playwright

    # Django's ORM calls made by the test itself (not the server thread) stay synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()
