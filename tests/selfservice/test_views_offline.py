"""Offline unlock on the customer's page: the code to type on the lock screen while the phone has
not taken the state a payment wrote, and the emergency grace the lender allows."""

import pytest
from django.urls import reverse

from apps.core.actor import Actor
from apps.devices.models import Device, OfflineToken
from apps.devices.selectors import offline_code_digits
from apps.devices.services import device_ack
from tests.collections.offline import locked_phone, pay_cash

pytestmark = pytest.mark.django_db

BOX = "Your phone is offline? Type this code on the lock screen:"


def home(lender) -> str:
    return reverse("customers:home", kwargs={"lender_slug": lender.slug})


def status(client, lender) -> dict:
    return client.get(reverse("customers:status", kwargs={"lender_slug": lender.slug})).json()


def grouped(code: OfflineToken) -> str:
    digits = offline_code_digits(code=code)
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def test_the_code_shows_after_a_payment_until_the_phone_takes_its_state(
    client, lender_a, log_in
) -> None:
    device, loan = locked_phone(lender_a)
    log_in(lender_a, loan.customer)
    before = client.get(home(lender_a)).content.decode()
    assert 'data-testid="offline-code"' not in before  # nothing paid, no code

    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    code = OfflineToken.objects.get(device=device)
    answer = client.get(home(lender_a))
    assert "no-store" in answer["Cache-Control"]  # the code is kept by no cache
    page = answer.content.decode()
    assert BOX in page
    assert (
        f'<strong class="digits" data-testid="offline-code-digits">{grouped(code)}</strong>' in page
    )
    assert "It lifts the restrictions you paid for, with no internet." in page
    assert status(client, lender_a)["loans"][0]["offline_code"] is True

    device = Device.objects.get(pk=device.pk)
    device_ack(
        device_id=device.pk, version=device.desired_version, error_code="", actor=Actor.system()
    )
    page = client.get(home(lender_a)).content.decode()
    assert BOX not in page
    assert grouped(code) not in page
    assert status(client, lender_a)["loans"][0]["offline_code"] is False


def test_after_payoff_the_code_releases_the_phone(client, lender_a, log_in) -> None:
    device, loan = locked_phone(lender_a)
    pay_cash(loan, sum(i.total_due for i in loan.installments.all()))
    code = OfflineToken.objects.get(device=device)
    assert code.kind == OfflineToken.Kind.DISABLE_PAYG
    log_in(lender_a, loan.customer)
    page = client.get(home(lender_a)).content.decode()
    assert "Your phone is offline? Type this code on the lock screen to release it:" in page
    assert grouped(code) in page
    assert "Your loan is paid off: the code frees the phone for good, with no internet." in page


def test_the_box_speaks_the_customers_language(client, lender_a, log_in) -> None:
    device, loan = locked_phone(lender_a)
    loan.customer.locale = "es"
    loan.customer.save(update_fields=["locale"])
    pay_cash(loan, loan.installments.order_by("sequence").first().total_due)
    log_in(lender_a, loan.customer)
    page = client.get(home(lender_a)).content.decode()
    assert "¿Tu teléfono no tiene conexión? Escribe este código en la pantalla de bloqueo:" in page
    assert grouped(OfflineToken.objects.get(device=device)) in page
    assert "puedes levantar el bloqueo durante 24 horas" in page


def test_the_emergency_grace_is_explained_while_the_lender_allows_it(
    client, lender_a, log_in
) -> None:
    _device, loan = locked_phone(lender_a)
    log_in(lender_a, loan.customer)
    assert lender_a.emergency_grace_hours == 24  # the default
    page = client.get(home(lender_a)).content.decode()
    assert (
        "Once per restriction, you can lift a lock for 24 hours from the lock screen, with no "
        "internet, to reach maps, a ride or your mobile money. The phone locks again when the "
        "time is up." in page
    )
    lender_a.emergency_grace_hours = 1
    lender_a.save(update_fields=["emergency_grace_hours"])
    assert "you can lift a lock for 1 hour from the lock screen" in (
        client.get(home(lender_a)).content.decode()
    )
    lender_a.emergency_grace_hours = 0  # the lender turned it off
    lender_a.save(update_fields=["emergency_grace_hours"])
    page = client.get(home(lender_a)).content.decode()
    assert 'data-testid="emergency-grace"' not in page
    assert "Once per restriction" not in page
