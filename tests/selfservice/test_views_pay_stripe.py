"""Paying from the customer's page through Stripe: the checkout page, and an OXXO voucher the
page keeps showing until the store's payment arrives."""

from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.collections.models import PaymentAttempt
from tests.collections.stripe import deliver, stripe_for
from tests.selfservice.test_views import late_loan

pytestmark = pytest.mark.django_db


def test_a_peso_customer_goes_to_checkout_and_the_page_shows_the_oxxo_voucher(
    client, lender_b, stripe_fake, log_in
) -> None:
    stripe_for(lender_b)
    loan = late_loan(lender_b, days_ago=50)
    log_in(lender_b, loan.customer)
    home = reverse("customers:home", kwargs={"lender_slug": lender_b.slug})
    page = client.get(home).content.decode()
    assert 'data-testid="pay-stripe"' in page
    assert "OXXO" in page
    pay = reverse(
        "customers:pay", kwargs={"lender_slug": lender_b.slug, "reference": loan.reference}
    )
    answer = client.post(pay, {"provider": "stripe"})
    assert answer.status_code == 302
    assert answer.url.startswith(stripe_fake.base)  # Stripe's checkout page
    attempt = PaymentAttempt.objects.get()
    for event in stripe_fake.issue_oxxo(attempt.attempt_ref):
        deliver(client, stripe_fake, lender_b, event)
    attempt.refresh_from_db()
    page = client.get(f"{home}?paid=1").content.decode()  # Stripe sends the customer back
    assert attempt.voucher_number in page
    assert "payment is received" not in page  # not before the store has the cash
    expires = timezone.localtime(attempt.voucher_expires_at, ZoneInfo(lender_b.timezone))
    assert expires.strftime("%H:%M") in page  # the customer's own clock
    for event in stripe_fake.settle_oxxo(attempt.attempt_ref):
        deliver(client, stripe_fake, lender_b, event)
    status = client.get(reverse("customers:status", kwargs={"lender_slug": lender_b.slug})).json()
    attempt.refresh_from_db()
    assert attempt.status == "paid"
    assert attempt.payment.provider_ref in status["loans"][0]["payment"]  # the receipt's reference
