from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.actor import Actor
from apps.lenders.models import Lender, LoanProduct, Membership
from apps.lenders.services import loan_product_save
from apps.lenders.tenancy import LenderScopedAdmin, user_lender_id


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


@admin.register(LoanProduct)
class LoanProductAdmin(LenderScopedAdmin):
    """Lender admins define products; every save is validated and audited by the service."""

    add_roles = change_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = ("name", "lender", "installments", "frequency", "interest_method",
                    "interest_rate_percent", "grace_days", "is_active")  # fmt: skip
    list_filter = ("is_active", "frequency", "interest_method", "lender")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("lender", "name", "is_active")}),
        ("Schedule", {"fields": ("installments", "frequency", "min_down_payment_percent")}),
        (
            "Price",
            {"fields": ("interest_method", "interest_rate_percent", "origination_fee_percent")},
        ),
        (
            "Late payment",
            {"fields": ("grace_days", "late_fee_type", "late_fee_value", "late_fee_cap")},
        ),
    )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "lender": user_lender_id(request.user),
            **super().get_changeform_initial_data(request),
        }

    def save_model(self, request: HttpRequest, obj: LoanProduct, form: Any, change: bool) -> None:
        loan_product_save(product=obj, actor=Actor.agent(request.user, request))
