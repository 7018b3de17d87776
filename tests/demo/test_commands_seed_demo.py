import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.audit.selectors import audit_chain_list, audit_chain_verify
from apps.collections.models import Loan, Payment
from apps.demo.management.commands.seed_demo import demo_password
from apps.devices.models import Device
from apps.lenders.models import Lender

pytestmark = pytest.mark.django_db


def test_demo_data_loads_once_and_every_chain_verifies(capsys) -> None:
    call_command("seed_demo")
    first = capsys.readouterr().out
    assert "TOTP secret" in first
    assert "Demo loans:" in first
    assert "Point of sale:" in first
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert "already loaded" in second
    assert "TOTP secret" not in second
    assert Lender.objects.count() == 2
    assert sorted(Loan.objects.values_list("lender__slug", flat=True)) == ["demo-ke"] * 3 + [
        "demo-mx"
    ]
    assert Payment.objects.count() == 1
    assert Device.objects.filter(status="pending").count() == 4
    assert all(audit_chain_verify(chain=chain) is None for chain in audit_chain_list())


def test_the_printed_links_are_on_the_demo_address_when_it_is_not_the_default(
    capsys, settings
) -> None:
    settings.DEMO_BASE_URL = "http://127.0.0.1:18123"
    call_command("seed_demo")
    printed = capsys.readouterr().out
    assert "Point of sale: http://127.0.0.1:18123/pos/" in printed
    assert "Customer pages: http://127.0.0.1:18123/my/demo-ke/" in printed
    links = re.findall(r"https?://\S+", printed)
    assert links, printed
    assert all(link.startswith("http://127.0.0.1:18123/") for link in links), links


def test_demo_passwords_pass_the_validators_whatever_the_random_draw() -> None:
    """The seeding sets every demo user's password through the validators; a draw they
    refuse stops ``make run``. 5,000 draws against the most alike user name: the old
    "demo-" and 12 characters failed about 6 of them."""
    user = get_user_model()(username="clerk-demo-ke", email="clerk-demo-ke@demo.example")
    refused = 0
    for _ in range(5000):
        try:
            validate_password(demo_password(), user)
        except ValidationError:
            refused += 1
    assert refused == 0
