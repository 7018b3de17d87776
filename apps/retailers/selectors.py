from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.core.errors import NotFound
from apps.retailers.models import Clerk, Sale


def clerk_for_user(*, user: Any) -> Clerk | None:
    if user is None or not user.is_authenticated:
        return None
    return Clerk.objects.select_related("shop").filter(user_id=user.pk).first()


def sale_get_for_clerk(*, public_id: Any, clerk: Clerk) -> Sale:
    """A sale of the clerk's shop; NotFound for any other (the same for both cases)."""
    sale = (
        Sale.objects.select_related("lender", "customer", "product", "loan", "device", "shop")
        .filter(public_id=public_id, shop_id=clerk.shop_id)
        .first()
    )
    if sale is None:
        raise NotFound(sale=str(public_id))
    return sale


# A draft nobody touched for this long is abandoned: the customer left, and the terms it
# quoted (the first due date) are stale anyway. It leaves "Recent sales"; signed sales stay.
SALE_DRAFT_TTL = timedelta(hours=24)


def sale_list_for_clerk(*, clerk: Clerk, limit: int = 20) -> list[Sale]:
    """The shop's recent sales, newest first: every signed one, and the drafts touched in
    the last ``SALE_DRAFT_TTL``."""
    fresh = timezone.now() - SALE_DRAFT_TTL
    return list(
        Sale.objects.select_related("customer", "loan", "lender")
        .filter(Q(loan__isnull=False) | Q(updated_at__gte=fresh), shop_id=clerk.shop_id)
        .order_by("-created_at")[:limit]
    )
