"""The work queues in the back office: an agent finds a loan by the phone number as written,
by IMEI or by reference, opens a queue, and opens the credits to review."""

import pytest
from django.urls import reverse

from apps.collections.selectors import WorkQueue, loan_outstanding
from tests.collections.factories import signed_loan
from tests.collections.work_queues import pay
from tests.devices.factories import enrolled_phone

pytestmark = pytest.mark.django_db


def test_an_agent_finds_a_loan_by_phone_as_written_by_imei_and_opens_a_queue(
    lender_a, lender_b, make_agent, verified_client
) -> None:
    mine = enrolled_phone(lender_a)[0]
    theirs = enrolled_phone(lender_b)[0]
    client = verified_client(make_agent(lender_a))
    url = reverse("admin:collections_loan_changelist")
    local = "0" + mine.loan.customer.phone[-9:]  # as a Kenyan writes it: 07xx xxx xxx
    spaced = f"{local[:4]} {local[4:7]} {local[7:]}"
    for term in (spaced, mine.imei, mine.loan.reference):
        page = client.get(url, {"q": term}).content.decode()
        assert mine.loan.reference in page, term
    assert theirs.loan.reference not in client.get(url, {"q": theirs.imei}).content.decode()
    page = client.get(url, {"queue": WorkQueue.OUT_OF_SYNC}).content.decode()
    assert "Phone out of sync for over an hour" in page


def test_an_agent_opens_the_credits_to_review(lender_a, make_agent, verified_client) -> None:
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    pay(loan, loan_outstanding(loan=loan).amount * 2, "MP-1")
    client = verified_client(make_agent(lender_a))
    url = reverse("admin:collections_loan_changelist")
    page = client.get(url, {"queue": WorkQueue.CREDIT_TO_REVIEW}).content.decode()
    assert "Credit over one installment, to review" in page
    assert loan.reference in page
