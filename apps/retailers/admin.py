from django.contrib import admin

from apps.lenders.tenancy import LenderScopedAdmin
from apps.retailers.models import Clerk, Shop


@admin.register(Shop)
class ShopAdmin(LenderScopedAdmin):
    """The shops that sell the agent's lender's loans."""

    list_display = ("name", "retailer", "timezone", "support_phone")
    search_fields = ("name", "retailer__name")


@admin.register(Clerk)
class ClerkAdmin(LenderScopedAdmin):
    list_display = ("user", "shop", "created_at")
    search_fields = ("user__username", "shop__name")
