"""Two clerks entering two people on one number at once: one customer, and the second clerk is
told the number is taken, never given a 500."""

import threading

import pytest
from django.db import connection, transaction

from apps.customers.errors import PhoneInUse
from apps.customers.models import Customer
from tests.customers.entry import BRIAN, create

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_two_clerks_entering_two_people_on_one_number_at_once_make_one_customer(lender_a) -> None:
    """The first clerk's customer is inserted but not committed when the second clerk's
    check runs (it sees nothing); the second insert waits on the unique index, fails once
    the first commits, and is answered as a taken number: never a 500."""
    inserted, release = threading.Event(), threading.Event()

    def first_clerk() -> None:
        try:
            with transaction.atomic():
                create(lender_a, **BRIAN)
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first_clerk)
    thread.start()
    assert inserted.wait(10)
    threading.Timer(0.5, release.set).start()  # commits while the second insert waits
    with pytest.raises(PhoneInUse, match=r"\(B\. O\*\*\*\)"):
        create(lender_a, full_name="Amina Wanjiru", phone="0722000111", national_id="23456781")
    thread.join(10)
    assert list(Customer.objects.values_list("full_name", flat=True)) == ["Brian Otieno"]
