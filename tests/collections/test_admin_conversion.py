"""The dashboard's conversion by trigger, as the lender's agent sees it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.collections.factories import signed_loan
from tests.collections.test_conversion import called, paid, texted

pytestmark = pytest.mark.django_db


def test_the_dashboard_shows_the_share_who_paid_after_each_trigger(
    lender_a, make_agent, verified_client
) -> None:
    ten_days_ago = timezone.now() - timedelta(days=10)
    first, second, third = (signed_loan(lender_a) for _ in range(3))
    texted(first, ten_days_ago, kind="funds")
    texted(second, ten_days_ago, kind="funds")
    paid(first, ten_days_ago + timedelta(hours=2))
    called(third, ten_days_ago)
    paid(third, ten_days_ago + timedelta(days=3))
    page = verified_client(make_agent(lender_a)).get(reverse("admin:collections_loan_portfolio"))
    html = page.content.decode()
    assert 'data-conversion="funds">2<' in html
    assert 'data-conversion-24h="funds">50%<' in html
    assert 'data-conversion-7d="funds">50%<' in html
    assert 'data-conversion-24h="voice">0%<' in html
    assert 'data-conversion-7d="voice">100%<' in html
    assert 'data-conversion="reminder">0<' in html
