from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.collections.services import loan_financed_minimum
from apps.core.actor import Actor
from apps.lenders.models import (
    Lender,
    LoanProduct,
    Membership,
    RestrictionPolicy,
    RestrictionPolicyVersion,
    RestrictionStage,
)
from apps.lenders.services import lender_settings_save, loan_product_save
from apps.lenders.tenancy import (
    LenderScopedAdmin,
    ReadOnlyAdminMixin,
    is_platform_operator,
    scope_for_user,
    user_can_see,
    user_lender_id,
)


@admin.register(Lender)
class LenderAdmin(LenderScopedAdmin):
    """The lender's own settings, changed by its admin through ``lender_settings_save``; the
    rest of the lender (its name, country, currency) is set when it is created."""

    change_roles = frozenset({Membership.Role.LENDER_ADMIN})
    list_display = ("name", "slug", "country", "currency", "timezone", "locale")
    search_fields = ("name", "slug")
    fields = ("name", "slug", "country", "currency", "timezone", "locale", "emergency_grace_hours")
    readonly_fields = ("name", "slug", "country", "currency", "timezone", "locale")

    def save_model(self, request: HttpRequest, obj: Lender, form: Any, change: bool) -> None:
        lender_settings_save(lender=obj, actor=Actor.from_request(request))


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
    list_display = (
        "name",
        "lender",
        "installments",
        "frequency",
        "interest_method",
        "interest_rate_percent",
        "grace_days",
        "is_active",
    )
    list_filter = ("is_active", "frequency", "interest_method", "lender")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("lender", "name", "is_active")}),
        (
            "Schedule",
            {
                "fields": (
                    "installments",
                    "frequency",
                    "min_down_payment_percent",
                    "smallest_financed",
                )
            },
        ),
        (
            "Price",
            {"fields": ("interest_method", "interest_rate_percent", "origination_fee_percent")},
        ),
        (
            "Late payment",
            {"fields": ("grace_days", "late_fee_type", "late_fee_value", "late_fee_cap")},
        ),
    )

    readonly_fields = ("smallest_financed",)

    @admin.display(description=_("Smallest amount financed"))
    def smallest_financed(self, product: LoanProduct) -> str:
        """Less than this would leave an installment of zero, which the counter refuses."""
        if product.pk is None:
            return "-"
        minimum = loan_financed_minimum(product=product)
        return f"{minimum.currency} {minimum.amount}"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "lender": user_lender_id(request.user),
            **super().get_changeform_initial_data(request),
        }

    def save_model(self, request: HttpRequest, obj: LoanProduct, form: Any, change: bool) -> None:
        loan_product_save(product=obj, actor=Actor.from_request(request))


class _ReadOnlyInline(admin.TabularInline):
    """Children of an append-only parent: shown, never added, changed or removed.

    Whether the parent may be seen at all is the parent admin's (scoped)
    decision; the inline only repeats the lender check for the row it shows.
    """

    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def get_queryset(self, request: HttpRequest) -> Any:
        return scope_for_user(super().get_queryset(request), request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Django also asks with obj=None when building the inline's queryset.
        if obj is None:
            return is_platform_operator(request.user) or user_lender_id(request.user) is not None
        return user_can_see(request.user, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _stages_summary(version: RestrictionPolicyVersion) -> str:
    return "; ".join(str(stage) for stage in version.stages.all())


class RestrictionPolicyVersionInline(_ReadOnlyInline):
    model = RestrictionPolicyVersion
    fields = ("version", "created_at", "stages_summary")
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("stages")

    @admin.display(description=_("stages"))
    def stages_summary(self, obj: RestrictionPolicyVersion) -> str:
        return _stages_summary(obj)


class RestrictionStageInline(_ReadOnlyInline):
    model = RestrictionStage
    fields = (
        "position",
        "days_overdue",
        "action",
        "messages",
        "alarm_times",
        "blocked_packages",
        "blocked_categories",
    )


@admin.register(RestrictionPolicy)
class RestrictionPolicyAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """Policies are created and versioned by services, never edited here."""

    list_display = ("name", "lender", "is_active", "created_at")
    list_filter = ("is_active", "lender")
    search_fields = ("name",)
    readonly_fields = ("lender", "name", "is_active", "created_at")
    fields = readonly_fields
    inlines = (RestrictionPolicyVersionInline,)


@admin.register(RestrictionPolicyVersion)
class RestrictionPolicyVersionAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """An immutable version with its stages; loans pin one of these when they are signed."""

    list_display = ("policy", "version", "lender", "created_at", "stages_summary")
    list_filter = ("lender",)
    search_fields = ("policy__name",)
    readonly_fields = ("lender", "policy", "version", "created_at")
    fields = readonly_fields
    inlines = (RestrictionStageInline,)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("policy").prefetch_related("stages")

    @admin.display(description=_("stages"))
    def stages_summary(self, obj: RestrictionPolicyVersion) -> str:
        return _stages_summary(obj)
