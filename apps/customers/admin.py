from django.contrib import admin

from apps.customers.models import Customer
from apps.lenders.tenancy import LenderScopedAdmin


@admin.register(Customer)
class CustomerAdmin(LenderScopedAdmin):
    list_display = ("full_name", "phone", "national_id", "lender", "created_at")
    list_filter = ("lender",)
    search_fields = ("full_name", "phone", "national_id")
