"""Offline unlock, as a property: any interleaving of days, sweeps, payments, reversals, codes
typed on a phone with no network and check-ins leaves the phone on the state the books call
for once it checks in, and, while offline, never more restricted than what the customer paid
for (the ladder from the oldest unpaid due date when the code was issued).

The phone is the reference simulator; its HTTP goes through Django's test client to the real
agent API views, in this process, so that many examples run in seconds.
"""

import contextlib
import json as json_module
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import time_machine
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from apps.collections.models import Loan
from apps.collections.services import loan_stage_sweep, payment_record, payment_reverse
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.core.money import Money
from apps.devices.models import DeviceState, OfflineToken
from apps.devices.selectors import offline_code_digits
from apps.devices.services import enrollment_token_mint
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed, signed_loan
from tests.devices.factories import phone_registered, valid_imei
from tests.lenders.factories import LenderFactory
from tools.agent_sim import Agent
from tools.agent_sim.agent import AgentStopped

pytestmark = pytest.mark.django_db

ORDER = ["normal", "reminder", "wallpaper", "alarm", "block_apps", "lock"]
LADDER = [(1, "reminder"), (3, "wallpaper"), (7, "alarm"), (14, "block_apps"), (30, "lock")]
START = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Africa/Nairobi"))


class ClientSession:
    """The simulator's HTTP through Django's test client: the agent API's real views."""

    def __init__(self) -> None:
        self.client = Client()

    def post(self, url, json=None, headers=None, timeout=None) -> requests.Response:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        answer = self.client.post(
            urlsplit(url).path,
            data=json_module.dumps(json),
            content_type="application/json",
            **extra,
        )
        response = requests.Response()
        response.status_code, response._content, response.url = (
            answer.status_code,
            answer.content,
            url,
        )
        return response


def paid_for(loan: Loan, paid_until, today) -> str:
    """The level the ladder gives a loan whose oldest unpaid installment is due ``paid_until``
    (what the customer's payments bought, written here from the policy)."""
    late = (today - paid_until).days
    days = late if late > loan.grace_days else 0
    return next((s for d, s in reversed(LADDER) if days and days >= d), "normal")


def books_level(loan: Loan) -> str:
    newest = DeviceState.objects.filter(device__loan=loan).order_by("-version").first()
    return newest.level


step = st.tuples(
    st.integers(min_value=0, max_value=9),  # days to move on
    st.sampled_from(
        ["sweep", "sweep", "pay", "pay", "pay_all", "reverse", "type", "type_old", "online"]
    ),
    st.integers(min_value=5, max_value=220),  # percent of the oldest installment, for "pay"
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=3, max_size=12), start_late=st.integers(0, 70))
# typed, then the payment reversed and swept: online, the state pulled (restricted again) wins
@example(
    steps=[(0, "pay", 150), (0, "type", 5), (0, "reverse", 5), (0, "online", 5)], start_late=40
)
# an old code typed after the phone pulled newer states: refused
@example(
    steps=[(0, "pay", 60), (1, "pay", 60), (0, "online", 5), (0, "type_old", 5)], start_late=40
)
def test_offline_codes_never_fight_the_books(steps, start_late, django_capture_on_commit_callbacks):
    sid = transaction.savepoint()
    try:
        _play(steps, start_late, django_capture_on_commit_callbacks)
    finally:
        transaction.savepoint_rollback(sid)
        cache.clear()  # the agent API's throttle counts, example by example


def _play(steps, start_late: int, capture) -> None:
    now = START
    with time_machine.travel(now - timedelta(days=30 + start_late), tick=False):
        lender = LenderFactory(country="KE", slug="offline-prop")
        loan = signed_loan(lender)
        device = phone_registered(loan, imei=valid_imei(), brand="X", model_name="Y")
        token = enrollment_token_mint(device_id=device.pk, actor=Actor.system()).token
        agent = Agent(
            server="http://testserver/api/agent/v1/",
            token=token,
            imei=device.imei,
            session=ClientSession(),
        )
        agent.enroll()
        noticed(loan)
    with time_machine.travel(now, tick=False):
        sweep(lender)
        agent.check_in()
    agent.network = False  # the customer is out of data from here on, until "online"
    payments: list[str] = []  # references of the payments not reversed, newest last
    made = 0
    entitled: str | None = None  # the most the phone may show, by the newest code typed
    typed: set[int] = set()
    for days, action, percent in steps:
        now += timedelta(days=days)
        with time_machine.travel(now, tick=False), capture(execute=True):
            today = lender_local_date(lender=lender)
            loan.refresh_from_db()
            if action == "sweep":
                sweep(lender)
            elif action in ("pay", "pay_all") and loan.status == Loan.Status.ACTIVE:
                open_ = [i for i in loan.installments.order_by("sequence") if i.paid_at is None]
                owed = sum((i.total_due - i.total_paid for i in open_), Decimal(0))
                amount = (
                    owed
                    if action == "pay_all"
                    else min(owed, (open_[0].total_due * percent / 100).quantize(Decimal("0.01")))
                )
                if amount > 0:
                    made += 1
                    payments.append(f"p-{made}")
                    payment_record(
                        loan_id=loan.pk,
                        amount=Money(amount, lender.currency),
                        channel="manual",
                        provider="manual",
                        provider_ref=payments[-1],
                        received_at=now,
                        actor=Actor.system(),
                        reason="Paid.",
                    )
            elif action == "reverse" and payments:
                ref = payments.pop()
                amount = loan.payments.get(provider_ref=ref).amount
                with contextlib.suppress(DomainError):
                    payment_reverse(
                        loan_id=loan.pk,
                        kind="chargeback",
                        amount=Money(amount, lender.currency),
                        provider="manual",
                        provider_ref=f"r-{ref}",
                        payment_provider_ref=ref,
                        received_at=now,
                        actor=Actor.system(),
                    )
            elif action in ("type", "type_old"):
                codes = list(OfflineToken.objects.filter(device=device).order_by("count"))
                if codes:
                    code = codes[-1] if action == "type" else codes[0]
                    held = DeviceState.objects.get(device=device, version=agent.phone.version)
                    answer = agent.type_token(offline_code_digits(code=code))
                    event(f"typed {action}: {answer.split(':')[0]}")
                    if code.count <= held.document.get("token_count", 0) or code.pk in typed:
                        # older than the state the phone holds, or typed before: void
                        assert answer.startswith("refused"), (action, answer)
                    typed.add(code.pk)
                    if not answer.startswith("refused") and code.kind == "set_time":
                        entitled_until = code.paid_until
                        entitled = "set"
                    if answer == "released":
                        entitled = "released"
            elif action == "online":
                agent.network = True
                with contextlib.suppress(AgentStopped):  # a released phone's agent stops
                    agent.check_in()
                loan.refresh_from_db()
                # online, the phone is on the state the books call for
                assert agent.effective_level() == books_level(loan), agent.describe()
                agent.network = False
                entitled = None
            loan.refresh_from_db()
            level = agent.effective_level()
            if entitled == "released":
                assert level == "released"
            elif entitled == "set":
                # offline, never more restricted than the code's paid-until date allows
                allowed = paid_for(loan, entitled_until, today)
                assert ORDER.index(level) <= ORDER.index(allowed), (level, allowed)
    # back online at the end: the phone and the books agree
    with time_machine.travel(now, tick=False):
        agent.network = True
        with contextlib.suppress(AgentStopped):
            agent.check_in()
        loan.refresh_from_db()
        assert agent.effective_level() == books_level(loan), agent.describe()


def sweep(lender) -> None:
    loan_stage_sweep(
        lender_id=lender.pk,
        business_date=lender_local_date(lender=lender),
        id_from=0,
        id_to=10**12,
    )
