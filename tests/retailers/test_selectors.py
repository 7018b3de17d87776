"""The shop's recent sales: signed ones stay, abandoned drafts leave."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.retailers.models import Sale
from apps.retailers.selectors import SALE_DRAFT_TTL, sale_list_for_clerk
from tests.collections.factories import signed_loan
from tests.retailers.factories import clerk_for, shop_for

pytestmark = pytest.mark.django_db


def _sale(clerk, *, touched_ago: timedelta, loan=None) -> Sale:
    sale = Sale.objects.create(
        lender=clerk.shop.lenders.get(), shop=clerk.shop, clerk=clerk.user, loan=loan
    )
    Sale.objects.filter(pk=sale.pk).update(updated_at=timezone.now() - touched_ago)
    return sale


def test_a_draft_untouched_past_its_ttl_leaves_recent_sales_and_a_signed_sale_stays(
    lender_a,
) -> None:
    clerk = clerk_for(shop_for(lender_a))
    fresh = _sale(clerk, touched_ago=SALE_DRAFT_TTL - timedelta(minutes=1))
    abandoned = _sale(clerk, touched_ago=SALE_DRAFT_TTL + timedelta(minutes=1))
    signed = _sale(clerk, touched_ago=timedelta(days=30), loan=signed_loan(lender_a))
    assert {s.pk for s in sale_list_for_clerk(clerk=clerk)} == {fresh.pk, signed.pk}
    assert Sale.objects.filter(pk=abandoned.pk).exists()  # kept, only not listed
