from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from apps.accounts.models import User
from apps.lenders.tenancy import LenderScopedAdmin


@admin.register(User)
class UserAdmin(LenderScopedAdmin, DjangoUserAdmin):
    """Back-office users: a lender's own people, read-only for everyone, operators included.

    Users are created with ``manage.py create_agent`` (an audited service call).
    """

    list_display = ("username", "email", "first_name", "last_name", "is_active", "last_login")
    list_filter = ("is_active",)
    search_fields = ("username", "email", "first_name", "last_name")
