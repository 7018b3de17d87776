"""Drills: the product's promises under stress, each printing its figure and failing when it
falls short. `make test` runs them small (DRILL_SCALE unset); `make drills` at full size."""

import os

import pytest

FULL = os.environ.get("DRILL_SCALE") == "full"


def scale(small: int, full: int) -> int:
    return full if FULL else small


@pytest.fixture
def report(request):
    """Print a drill's figure on the terminal, beside the test report, whatever pytest captures."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    terminal = request.config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"\n  DRILL {line}")

    return say


def late_loan_with_requests(lender):
    """A loan 70 days into its schedule with its enrolled phone, a manual lock request and a
    hardship request waiting: the rows the loan's custom views act on. Returns (loan, device,
    lock request, pause)."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.collections.models import Loan
    from apps.collections.services import loan_hardship_request, loan_manual_lock_request
    from apps.core.actor import Actor
    from apps.lenders.models import Membership
    from apps.lenders.selectors import lender_local_date
    from tests.collections.factories import noticed
    from tests.devices.factories import enrolled_phone
    from tests.lenders.factories import MembershipFactory

    device, _, _ = enrolled_phone(lender, signed_at=timezone.now() - timedelta(days=70))
    today = lender_local_date(lender=lender)
    loan = Loan.objects.get(pk=device.loan_id)
    noticed(loan)  # told of the lock ahead: a manual lock may be asked
    asker = MembershipFactory(lender=lender, role=Membership.Role.AGENT).user
    lock = loan_manual_lock_request(
        loan_id=loan.pk, lender_id=lender.pk, user=asker, actor=Actor.system(), reason="Drill."
    )
    pause = loan_hardship_request(
        loan_id=loan.pk,
        lender_id=lender.pk,
        until=today + timedelta(days=10),
        actor=Actor.system(),
        reason="Drill.",
    )
    return loan, device, lock, pause
