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


def test_the_loan_lists_queries_stay_the_same_as_loans_grow(
    lender_a, make_agent, verified_client, django_assert_max_num_queries
) -> None:
    """The columns (days late, due now, phone) and the queue tabs' counts are SQL over the
    page, not a query per loan: 3 loans or 12 cost the same number of queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = verified_client(make_agent(lender_a))
    url = reverse("admin:collections_loan_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            page = client.get(url, {"o": "-4"})  # sorted by days late
        assert page.status_code == 200
        return len(seen)

    for _ in range(3):
        enrolled_phone(lender_a)
    few = queries()
    for _ in range(9):
        enrolled_phone(lender_a)
    assert queries() == few
    with django_assert_max_num_queries(few):
        page = client.get(url).content.decode()
    assert page.count('class="field-phone_state"') == 12


def test_the_work_queues_are_tabs_with_their_counts(lender_a, make_agent, verified_client) -> None:
    loan = signed_loan(lender_a, price="3500", down="500", installments=3)
    pay(loan, loan_outstanding(loan=loan).amount * 2, "MP-1")
    signed_loan(lender_a)
    client = verified_client(make_agent(lender_a))
    page = client.get(reverse("admin:collections_loan_changelist")).content.decode()
    tab = page.split(f'data-queue="{WorkQueue.CREDIT_TO_REVIEW}"')[1].split("</a>")[0]
    assert 'class="queue-count queue-count-some">1<' in tab
    for queue in ("promises_due", "lock_tomorrow", "approvals", "released_with_arrears"):
        assert f'data-queue="{queue}"' in page
    chosen = client.get(
        reverse("admin:collections_loan_changelist"), {"queue": WorkQueue.CREDIT_TO_REVIEW}
    ).content.decode()
    assert f'data-queue="{WorkQueue.CREDIT_TO_REVIEW}" aria-current="page"' in chosen
