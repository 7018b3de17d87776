"""A login code sent while the counter signs a loan for the same customer: no deadlock.

Signing records its audit event (the chain's head lock) and its loan's foreign key to the
customer is checked at commit (a FOR KEY SHARE lock on the customer's row); the login code's
task locks the customer's row, then the chain. A FOR UPDATE there waited for the signing's
chain while the signing's commit waited for it: PostgreSQL killed one. The task takes
FOR NO KEY UPDATE, which a foreign-key check does not wait for."""

import re
import threading
import uuid
from decimal import Decimal
from uuid import uuid4

import pytest

from apps.collections.services import loan_sign
from apps.core.actor import Actor
from apps.core.money import Money
from apps.customers.errors import LoginCodeExpired
from apps.customers.models import CustomerLoginCode
from apps.customers.services import customer_login_check, customer_login_code_send
from tests.customers.factories import CustomerFactory, consent_for
from tests.lenders.factories import LoanProductFactory, restriction_policy_version_for
from tests.waiting import while_held

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_login_code_and_a_sale_for_the_same_customer_at_once_do_not_deadlock(lender_a):
    restriction_policy_version_for(lender_a)
    product = LoanProductFactory(lender=lender_a, min_down_payment_percent=Decimal(0))
    customer = CustomerFactory(lender=lender_a)
    consent = consent_for(customer)

    def sign():  # records its audit event (the chain held); the customer's key checked at commit
        loan_sign(
            customer=customer,
            product=product,
            consent=consent,
            device_price=Money(Decimal(12000), "KES"),
            down_payment=Money(Decimal(2000), "KES"),
            actor=Actor.system(),
        )

    errors = while_held(
        hold=sign,
        act=lambda: customer_login_code_send(
            customer_id=customer.pk, request_key=str(uuid.uuid4()), actor=Actor.system()
        ),
    )
    assert errors == []
    assert CustomerLoginCode.objects.filter(customer=customer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_right_code_sent_twice_at_once_logs_in_once(
    lender_a, sms_outbox, django_capture_on_commit_callbacks
) -> None:
    from apps.customers.services import customer_login_code_send

    customer = CustomerFactory(lender=lender_a)
    customer_login_code_send(
        customer_id=customer.pk, request_key=str(uuid4()), actor=Actor.system()
    )
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1][1]).group(1)
    barrier, results = threading.Barrier(2), []

    def submit() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(
                customer_login_check(
                    lender_id=lender_a.pk, phone=customer.phone, code=code, actor=Actor.system()
                ).pk
            )
        except LoginCodeExpired:
            results.append("expired")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results, key=str) == sorted([customer.pk, "expired"], key=str)
