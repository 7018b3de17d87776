from __future__ import annotations

from typing import Any

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


def sale_list_for_clerk(*, clerk: Clerk, limit: int = 20) -> list[Sale]:
    return list(
        Sale.objects.select_related("customer", "loan", "lender")
        .filter(shop_id=clerk.shop_id)
        .order_by("-created_at")[:limit]
    )
