"""A suspension that starts while a sweep is under way: the sweep finishes first, and
nothing is raised after the suspension commits."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.collections.locks import loan_lock
from apps.collections.services import loan_stage_sweep, restrictions_suspend
from apps.core.actor import Actor
from apps.lenders.selectors import lender_local_date
from tests.collections.factories import noticed
from tests.devices.factories import enrolled_phone
from tests.waiting import backend_pid, wait_for, wait_until_waiting_for_a_lock

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_suspension_waits_for_the_sweep_under_way_and_nothing_rises_after_it(lender_a, operator):
    device, _, _ = enrolled_phone(lender_a, signed_at=timezone.now() - timedelta(days=75))
    loan = device.loan
    noticed(loan)
    held, go, errors, pids = threading.Event(), threading.Event(), [], {}

    def holder():  # a payment's transaction, say, holding the loan the sweep must raise
        try:
            with transaction.atomic():
                loan_lock(loan_id=loan.pk, lender_id=lender_a.pk)
                held.set()
                go.wait(10)
        finally:
            connection.close()

    def run(name, work):
        def target():
            try:
                pids[name] = backend_pid()
                work()
            except Exception as exc:
                errors.append((name, exc))
            finally:
                connection.close()

        return threading.Thread(target=target)

    today = lender_local_date(lender=lender_a)
    sweeper = run(
        "sweep",
        lambda: loan_stage_sweep(
            lender_id=lender_a.pk, business_date=today, id_from=0, id_to=10**12
        ),
    )
    suspender = run(
        "suspend",
        lambda: restrictions_suspend(
            user=operator, actor=Actor.agent(operator), lender_id=lender_a.pk, reason="Order."
        ),
    )
    first = threading.Thread(target=holder)
    first.start()
    held.wait(10)
    sweeper.start()
    wait_for(lambda: "sweep" in pids)
    wait_until_waiting_for_a_lock(pids["sweep"])  # checked for a suspension, waits for the loan
    suspender.start()
    wait_for(lambda: "suspend" in pids)
    wait_until_waiting_for_a_lock(pids["suspend"])  # waits for the sweep under way
    go.set()
    for thread in (first, sweeper, suspender):
        thread.join()
    assert errors == []
    order = list(
        AuditEvent.objects.filter(
            lender=lender_a,
            action__in=[
                "collections.loan.stage_changed",
                "collections.restrictions.suspended",
            ],
        )
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert order == ["collections.loan.stage_changed", "collections.restrictions.suspended"]
