from django.contrib import admin

from apps.audit.models import AuditEvent
from apps.lenders.tenancy import LenderScopedAdmin, ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """The audit trail: read-only for everyone, scoped to the agent's lender."""

    list_display = (
        "occurred_at",
        "action",
        "actor_type",
        "actor_id",
        "target_type",
        "target_id",
        "seq",
    )
    list_filter = ("action", "actor_type", "lender")
    search_fields = ("action", "target_id", "actor_id")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at", "-id")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
