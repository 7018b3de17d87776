"""The sweep against a payment and a pause decision running at the same moment."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.collections.locks import loan_lock
from apps.collections.selectors import loan_next_due
from apps.collections.services import (
    loan_hardship_request,
    loan_pause_decide,
    loan_stage_sweep,
    payment_record,
)
from apps.core.actor import Actor
from apps.lenders.models import Membership
from apps.lenders.selectors import lender_local_date
from tests.devices.factories import enrolled_phone

ALL = {"id_from": 0, "id_to": 10**12}


def first_due(loan):
    return loan.installments.order_by("sequence").first().due_date


@pytest.mark.django_db(transaction=True)
def test_a_sweep_waiting_on_a_payment_does_not_restrict_the_loan_it_made_current(lender_a):
    device, _s, _k = enrolled_phone(lender_a)
    loan = device.loan
    on = first_due(loan) + timedelta(days=5)  # the sweep's business date
    loan.installments.order_by("sequence").first()
    nd = loan_next_due(loan=loan)
    paid, go, errors = threading.Event(), threading.Event(), []

    def pay():
        try:
            with transaction.atomic():
                payment_record(
                    loan_id=loan.pk,
                    lender_id=loan.lender_id,
                    amount=nd.amount,
                    channel="provider",
                    provider="demo",
                    provider_ref="p1",
                    received_at=timezone.now(),
                    actor=Actor.system(),
                )
                paid.set()
                go.wait(10)
        except Exception as exc:
            errors.append(exc)
            paid.set()
        finally:
            connection.close()

    def sweep():
        try:
            loan_stage_sweep(lender_id=loan.lender_id, business_date=on, **ALL)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    t1 = threading.Thread(target=pay)
    t1.start()
    paid.wait(10)
    t2 = threading.Thread(target=sweep)
    t2.start()
    time.sleep(1.5)  # the sweep now waits for the loan's row
    go.set()
    t1.join()
    t2.join()
    assert errors == []
    loan.refresh_from_db()
    inst1 = loan.installments.order_by("sequence").first()
    # the first installment is paid, and the next falls due after `on`: nothing is overdue
    assert inst1.paid_at is not None
    assert loan.stage == "none", f"loan with nothing overdue was raised to {loan.stage}"


@pytest.mark.django_db(transaction=True)
def test_a_sweep_and_a_pause_decision_at_once_do_not_deadlock(lender_a, make_agent):
    device, _s, _k = enrolled_phone(lender_a)
    loan = device.loan
    supervisor = make_agent(lender_a, role=Membership.Role.SUPERVISOR)
    today = lender_local_date(lender=lender_a)
    pause = loan_hardship_request(
        loan_id=loan.pk,
        lender_id=lender_a.pk,
        until=today + timedelta(days=2),
        actor=Actor.system(),
        reason="lost job",
    )
    on = first_due(loan) + timedelta(days=5)
    assert on > pause.ends_on
    locked, go, errors = threading.Event(), threading.Event(), []

    def decide():
        try:
            with transaction.atomic():
                loan_lock(loan_id=loan.pk, lender_id=lender_a.pk)  # step 1 of loan_pause_decide
                locked.set()
                go.wait(10)
                loan_pause_decide(
                    pause_id=pause.pk,
                    lender_id=lender_a.pk,
                    approve=True,
                    user=supervisor,
                    reason="ok",
                    actor=Actor.system(),
                )
        except Exception as exc:
            errors.append(("decide", exc))
        finally:
            connection.close()

    def sweep():
        try:
            loan_stage_sweep(lender_id=loan.lender_id, business_date=on, **ALL)
        except Exception as exc:
            errors.append(("sweep", exc))
        finally:
            connection.close()

    t1 = threading.Thread(target=decide)
    t1.start()
    locked.wait(10)
    t2 = threading.Thread(target=sweep)
    t2.start()
    time.sleep(1.5)  # the sweep now waits for the loan's row
    go.set()
    t1.join()
    t2.join()
    assert errors == []
