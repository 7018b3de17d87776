from django.contrib import admin

from apps.customers.models import AccountReadingConsent, Customer
from apps.lenders.tenancy import LenderScopedAdmin, ReadOnlyAdminMixin


@admin.register(Customer)
class CustomerAdmin(LenderScopedAdmin):
    list_display = ("full_name", "phone", "national_id", "lender", "created_at")
    list_filter = ("lender",)
    search_fields = ("full_name", "phone", "national_id")


@admin.register(AccountReadingConsent)
class AccountReadingConsentAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """Customers' consents to account reading (funds alerts): the text they agreed to, until
    when, whether they withdrew it, and the reference the aggregator names them by."""

    list_display = ("customer", "provider", "reference", "given_at", "expires_at", "revoked_at")
    list_filter = ("provider", "method", "lender")
    list_select_related = ("customer",)
    search_fields = ("reference", "customer__full_name", "customer__phone")
