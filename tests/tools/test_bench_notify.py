"""make bench-notify's seed, small and with no worker: its one insert writes reminders the
product's dispatcher takes as its own (a column the model gained and the insert lacks fails
here, not at the next benchmark run)."""

import pytest
from django.utils import timezone

from apps.collections.models import Loan
from apps.notifications.models import Notification
from tools.bench._seed import lender_seed, loans_seed
from tools.bench.notify import reminders_seed

pytestmark = pytest.mark.django_db


def test_the_seed_writes_due_reminders_spread_over_the_lenders_loans():
    lender = lender_seed(slug="bench-notify", name="Bench")
    loans_seed(lender=lender, loans=3)
    reminders_seed(lender=lender, messages=7, loans=3, run="t1")

    seeded = Notification.objects.filter(lender=lender)
    assert seeded.count() == 7
    assert set(seeded.values_list("loan_id", flat=True)) == set(
        Loan.objects.filter(lender=lender).values_list("pk", flat=True)
    )
    assert set(seeded.values_list("status", "kind")) == {("scheduled", "due_soon")}
    assert not seeded.filter(scheduled_for__gt=timezone.now()).exists()
