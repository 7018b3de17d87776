"""Two clerks entering two people on one number at once: one customer, and the second clerk is
told the number is taken, never given a 500."""

import pytest

from apps.customers.errors import PhoneInUse
from apps.customers.models import Customer
from tests.customers.entry import BRIAN, create
from tests.waiting import while_held

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_two_clerks_entering_two_people_on_one_number_at_once_make_one_customer(lender_a) -> None:
    """The first clerk's customer is inserted but not committed when the second clerk's
    check runs (it sees nothing); the second insert waits on the unique index, fails once
    the first commits, and is answered as a taken number: never a 500."""
    # the second clerk's insert runs only once it waits on the first's uncommitted row:
    # the race itself, not the ordinary check that would see a committed number
    errors = while_held(
        hold=lambda: create(lender_a, **BRIAN),
        act=lambda: create(
            lender_a, full_name="Amina Wanjiru", phone="0722000111", national_id="23456781"
        ),
    )
    assert [(side, type(exc)) for side, exc in errors] == [("act", PhoneInUse)]
    assert "(B. O***)" in str(errors[0][1])
    assert list(Customer.objects.values_list("full_name", flat=True)) == ["Brian Otieno"]
