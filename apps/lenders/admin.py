from django.contrib import admin

from apps.lenders.models import Lender, Membership
from apps.lenders.tenancy import LenderScopedAdmin


@admin.register(Lender)
class LenderAdmin(LenderScopedAdmin):
    list_display = ("name", "slug", "country", "currency", "timezone", "locale")
    search_fields = ("name", "slug")


@admin.register(Membership)
class MembershipAdmin(LenderScopedAdmin):
    list_display = ("user", "lender", "role", "created_at")
    list_filter = ("role", "lender")
    search_fields = ("user__username", "user__email")
    autocomplete_fields = ("user", "lender")
