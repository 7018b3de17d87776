"""``manage.py provider_webhook``: the demo's provider, posting to the demo's own address."""

import pytest
from django.core.management import call_command

from apps.collections.models import Payment
from tests.collections.factories import signed_loan


@pytest.mark.django_db(transaction=True)
def test_a_payment_reaches_the_demo_when_it_serves_on_another_port(
    lender_a, live_server, settings, capsys
) -> None:
    settings.DEMO_BASE_URL = live_server.url  # a free port, never 8000
    loan = signed_loan(lender_a)
    call_command(
        "provider_webhook",
        "--lender",
        lender_a.slug,
        "--loan",
        loan.reference,
        "--amount",
        "500",
        "--reference",
        "MP-DEMO-1",
    )
    assert capsys.readouterr().out.startswith("20")
    payment = Payment.objects.get(loan=loan)
    assert (payment.provider_ref, payment.amount) == ("MP-DEMO-1", 500)
