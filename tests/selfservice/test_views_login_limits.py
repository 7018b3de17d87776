"""The customer login's limits: per client address (high: a carrier puts many customers
behind one address), per mobile number (whatever the address), and wrong codes per number;
each refusal says which limit and when to try again, in the customer's language, and a
stranger's number is limited exactly like a customer's."""

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.customers.models import CustomerLoginCode
from apps.customers.services import LOGIN_TRIES_PER_NUMBER
from apps.selfservice.views import LOGIN_TRIES_PER_ADDRESS
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

STRANGER = "+254799000001"
# 7 min 30 s into a 15-minute window: the window ends in 7.5 minutes, said as 8
IN_A_WINDOW = datetime(2026, 12, 7, 9, 7, 30, tzinfo=UTC)


def _ask(client, lender, phone: str, address: str = "10.0.0.1"):
    url = reverse("customers:login", kwargs={"lender_slug": lender.slug})
    return client.post(url, {"phone": phone}, REMOTE_ADDR=address)


def _try_code(client, lender, code: str, address: str = "10.0.0.1"):
    url = reverse("customers:code", kwargs={"lender_slug": lender.slug})
    return client.post(url, {"code": code}, REMOTE_ADDR=address)


def _error(answer) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', answer.content.decode())
    return found.group(1) if found else ""


def test_a_carriers_address_logs_many_customers_in_when_each_tries_a_few_times(
    lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    """40 customers behind one carrier address each ask a code and log in: 80 tries from
    the address (the old limit of 20 locked the carrier out after 10 customers)."""
    customers = [CustomerFactory(lender=lender_a) for _ in range(40)]
    for customer in customers:
        client = Client()
        with django_capture_on_commit_callbacks(execute=True):
            assert _ask(client, lender_a, customer.phone).status_code == 302
        code = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)
        answer = _try_code(client, lender_a, code)
        assert answer.status_code == 302, _error(answer)


@time_machine.travel(IN_A_WINDOW, tick=False)
def test_the_address_limit_says_which_limit_and_when_to_try_again_when_reached(
    client, lender_a
) -> None:
    for n in range(LOGIN_TRIES_PER_ADDRESS):
        assert _ask(client, lender_a, f"+2547991{n:05d}").status_code == 302
    refused = _ask(client, lender_a, "+254799200000")
    assert refused.status_code == 200
    assert _error(refused) == (
        f"Too many login tries from this internet address: {LOGIN_TRIES_PER_ADDRESS} in 15 "
        "minutes. Try again in 8 minutes."
    )
    assert _ask(client, lender_a, "+254799200000", address="10.0.0.2").status_code == 302


@time_machine.travel(IN_A_WINDOW, tick=False)
@pytest.mark.parametrize("registered", [True, False])
def test_the_number_limit_counts_across_addresses_and_says_so_when_reached(
    client, lender_a, registered
) -> None:
    """A customer's number and a stranger's get the same answers, whatever the address."""
    phone = CustomerFactory(lender=lender_a).phone if registered else STRANGER
    answers = [
        _ask(client, lender_a, phone, address=f"10.0.1.{n}")
        for n in range(LOGIN_TRIES_PER_NUMBER + 1)
    ]
    assert [a.status_code for a in answers] == [302] * LOGIN_TRIES_PER_NUMBER + [200]
    assert _error(answers[-1]) == (
        f"Too many login tries for this number: {LOGIN_TRIES_PER_NUMBER} in 15 minutes. "
        "Try again in 8 minutes."
    )
    with time_machine.travel(datetime(2026, 12, 7, 9, 15, 1, tzinfo=UTC), tick=False):
        assert _ask(client, lender_a, phone, address="10.0.2.1").status_code == 302


@time_machine.travel(IN_A_WINDOW, tick=False)
@pytest.mark.parametrize(
    ("language", "address", "number"),
    [
        (
            "es",
            f"Demasiados intentos de acceso desde esta dirección de internet: "
            f"{LOGIN_TRIES_PER_ADDRESS} en 15 minutos. Inténtalo de nuevo en 8 minutos.",
            f"Demasiados intentos de acceso para este número: {LOGIN_TRIES_PER_NUMBER} en 15 "
            "minutos. Inténtalo de nuevo en 8 minutos.",
        ),
        (
            "zh-hans",
            f"来自此网络地址的登录尝试过多：15 分钟内 {LOGIN_TRIES_PER_ADDRESS} 次。请 8 分钟后再试。",  # noqa: RUF001  (Chinese punctuation)
            f"此号码的登录尝试过多：15 分钟内 {LOGIN_TRIES_PER_NUMBER} 次。请 8 分钟后再试。",  # noqa: RUF001  (Chinese punctuation)
        ),
    ],
)
def test_the_limits_speak_the_customers_language_when_reached(
    client, lender_a, language, address, number
) -> None:
    client.cookies["django_language"] = language
    for n in range(LOGIN_TRIES_PER_NUMBER):
        _ask(client, lender_a, STRANGER, address=f"10.0.1.{n}")
    assert _error(_ask(client, lender_a, STRANGER, address="10.0.1.99")) == number
    for n in range(LOGIN_TRIES_PER_ADDRESS):
        _ask(client, lender_a, f"+2547991{n:05d}", address="10.0.0.9")
    assert _error(_ask(client, lender_a, "+254799200000", address="10.0.0.9")) == address


@time_machine.travel(IN_A_WINDOW, tick=False)
@pytest.mark.parametrize("registered", [True, False])
def test_five_wrong_codes_lock_a_number_alike_whether_or_not_it_borrows_here(
    client, lender_a, sms_outbox, django_capture_on_commit_callbacks, registered
) -> None:
    """Before, a stranger's number answered "not right" for ever while a customer's locked
    after five wrong codes: six tries told who borrows here."""
    phone = CustomerFactory(lender=lender_a).phone if registered else STRANGER
    with django_capture_on_commit_callbacks(execute=True):
        _ask(client, lender_a, phone)
    right = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1) if registered else "000000"
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            _error(_try_code(client, lender_a, wrong, address=f"10.0.3.{n}")) for n in range(6)
        ]
    assert answers == ["That code is not right. Check the SMS and try again."] * 5 + [
        "Too many wrong codes for this number: 5 in 15 minutes. Try again in 8 minutes."
    ]
    if registered:  # recorded on the customer's code after the response, once each
        assert CustomerLoginCode.objects.get().failures == 5
