"""The login's services, run twice as the outbox's relay may run their tasks, change
things once (the limits that the login pages apply:
tests/selfservice/test_views_login_limits.py)."""

from uuid import uuid4

import pytest

from apps.core.actor import Actor
from apps.customers.models import CustomerLoginCode
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_code_task_run_twice_sends_one_code(lender_a, sms_outbox) -> None:
    from apps.customers.services import customer_login_code_send

    customer, key = CustomerFactory(lender=lender_a), str(uuid4())
    for _ in range(2):  # the outbox's relay racing a slow first send
        customer_login_code_send(customer_id=customer.pk, request_key=key, actor=Actor.system())
    assert CustomerLoginCode.objects.filter(customer=customer).count() == 1


def test_a_failure_task_run_twice_counts_one_failure(lender_a, sms_outbox) -> None:
    from apps.audit.models import AuditEvent
    from apps.customers.services import customer_login_code_send, customer_login_failure_record

    customer = CustomerFactory(lender=lender_a)
    customer_login_code_send(
        customer_id=customer.pk, request_key=str(uuid4()), actor=Actor.system()
    )
    login, attempt = CustomerLoginCode.objects.get(), str(uuid4())
    for _ in range(2):
        customer_login_failure_record(login_code_id=login.pk, attempt=attempt, actor=Actor.system())
    login.refresh_from_db()
    assert login.failures == 1
    assert AuditEvent.objects.filter(action="customers.login.code_failed").count() == 1
