"""The customer_phone_change command gives a customer a free number and refuses a taken one."""

import pytest

from tests.customers.entry import BRIAN, create

pytestmark = pytest.mark.django_db


def test_the_command_gives_a_customer_a_free_number_and_refuses_a_taken_one(lender_a) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    create(lender_a, **BRIAN)
    amina, _ = create(
        lender_a, full_name="Amina Wanjiru", phone="0712345678", national_id="10000001"
    )
    with pytest.raises(CommandError, match=r"another customer \(B\. O\*\*\*\)"):
        call_command("customer_phone_change", str(amina.pk), "0722000111", reason="Typo.")
    out = StringIO()
    call_command(
        "customer_phone_change", str(amina.pk), "0733 222 444", reason="Own SIM.", stdout=out
    )
    assert out.getvalue() == f"customer {amina.pk}: number now ends in 444\n"
    amina.refresh_from_db()
    assert amina.phone == "+254733222444"
