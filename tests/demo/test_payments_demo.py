"""The demo's payments, as `make run` plays them: the demo lenders' provider accounts and the
loopback fakes of Daraja and Stripe (tools/fakes/demo.py) configured alike, so that a
newcomer pays by M-Pesa (a prompt answered by the fake customer, or the paybill from the
M-Pesa menu) and by OXXO (a voucher paid at the fake store's till) against the real server."""

import re

import pytest
import requests
from django.core.management import call_command
from django.urls import reverse

from apps.collections.models import Loan, Payment, PaymentAttempt
from apps.collections.services import payment_attempt_start
from apps.core.actor import Actor
from apps.demo import providers
from apps.integrations.payments import mpesa
from tests.waiting import wait_for
from tools.fakes.demo import demo_fakes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fakes(live_server, settings):
    """The demo's fakes on loopback, calling the live server back; the demo's settings."""
    daraja, stripe = demo_fakes(live_server.url, pin_after=0.2)
    settings.MPESA_API_BASE = daraja.start()
    settings.STRIPE_API_BASE = stripe.start()
    settings.DEMO_BASE_URL = settings.PAYMENTS_CALLBACK_BASE_URL = live_server.url
    mpesa._tokens.clear()
    yield daraja, stripe
    daraja.stop()
    stripe.stop()
    mpesa._tokens.clear()


def test_the_stripe_endpoint_the_fake_calls_is_the_lenders_webhook() -> None:
    path = reverse("payments-api:provider", kwargs={"provider": "stripe", "lender_slug": "demo-mx"})
    assert path == providers.STRIPE_WEBHOOK_PATH


def test_the_demo_lenders_take_m_pesa_and_oxxo_through_the_fakes(
    fakes, live_server, capsys
) -> None:
    daraja, stripe = fakes
    call_command("seed_demo")
    printed = capsys.readouterr().out
    brian = Loan.objects.get(customer__full_name="Brian Otieno")
    lucia = Loan.objects.get(lender__slug="demo-mx")

    # seeding registered the paybill's URLs with Daraja, on the demo's address
    confirmation, validation = daraja.c2b_urls[providers.MPESA_SHORTCODE]
    assert confirmation.startswith(f"{live_server.url}/api/payments/v1/daraja/demo-ke/")
    assert validation.endswith("/c2b-validation/")
    # and it says how to pay from the M-Pesa menu, with the command that does it
    command = re.search(r"-m tools\.fakes\.daraja pay-bill (.+)", printed)
    assert command, printed
    assert f"--url {settings_base(daraja)}" in command.group(1)
    assert f"--account {brian.reference}" in command.group(1)
    assert f"{live_server.url}/my/demo-mx/" in printed

    # the M-Pesa menu: Pay Bill, the loan's reference as the account number
    paid = daraja.demo_pay_bill(
        shortcode=providers.MPESA_SHORTCODE, account=brian.reference, amount="500"
    )
    assert paid["paid"], paid
    assert Payment.objects.get(loan=brian, receipt_ref=paid["receipt"]).amount == 500
    refused = daraja.demo_pay_bill(
        shortcode=providers.MPESA_SHORTCODE, account="SC-NOTALOAN", amount="500"
    )
    assert not refused["paid"]

    # the prompt: the fake customer enters the PIN, and Daraja calls back
    attempt = payment_attempt_start(
        loan_id=brian.pk,
        lender_id=brian.lender_id,
        provider="mpesa",
        actor=Actor.system(),
        phone=brian.customer.phone,
    )
    wait_for(lambda: PaymentAttempt.objects.get(pk=attempt.pk).status == "paid")

    # OXXO: the voucher from Stripe's checkout page, then paid at the store's till
    attempt = payment_attempt_start(
        loan_id=lucia.pk,
        lender_id=lucia.lender_id,
        provider="stripe",
        actor=Actor.system(),
        return_url=f"{live_server.url}/my/demo-mx/",
    )
    shown = requests.post(f"{attempt.redirect_url}/oxxo", timeout=30)
    assert "Pay at the store (demo)" in shown.text
    attempt.refresh_from_db()
    assert attempt.status == "pending"
    till = requests.get(f"{stripe.base}/", timeout=30).text
    assert attempt.voucher_number in till
    intent = stripe.sessions[attempt.attempt_ref]["payment_intent"]
    assert requests.post(f"{stripe.base}/voucher/{intent}/pay", timeout=30).ok
    attempt.refresh_from_db()
    assert (attempt.status, attempt.payment.provider_ref) == ("paid", intent)
    assert "No voucher is waiting." in requests.get(f"{stripe.base}/", timeout=30).text


def settings_base(daraja) -> str:
    return f"http://127.0.0.1:{daraja.server.server_address[1]}"
