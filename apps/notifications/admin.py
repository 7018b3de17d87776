from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.collections.services import login_links_masked
from apps.lenders.tenancy import LenderScopedAdmin, ReadOnlyAdminMixin
from apps.notifications.models import Notification, VoiceCall


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """The delivery log of messages to customers: what was said, when, and how it went."""

    list_display = (
        "created_at",
        "loan",
        "kind",
        "status",
        "scheduled_for",
        "channel",
        "delivery",
        "acked_at",
        "sent_at",
        "delivered_at",
        "lender",
    )
    list_filter = ("status", "channel", "delivery", "kind", "lender")
    list_select_related = ("loan", "lender")
    search_fields = ("loan__reference",)
    search_help_text = "Search by loan number."
    exclude = ("provider_ref", "body")
    readonly_fields = ("text",)

    @admin.display(description=_("text"))
    def text(self, notification: Notification) -> str:
        # an answer to PAY carries a login link: an agent sees it without its token
        return login_links_masked(notification.body)


@admin.register(VoiceCall)
class VoiceCallAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """The reminder calls: what each read, how it went, and the key the customer pressed."""

    list_display = (
        "created_at",
        "loan",
        "stage",
        "status",
        "scheduled_for",
        "attempts",
        "answer",
        "called_at",
        "lender",
    )
    list_filter = ("status", "answer", "stage", "lender")
    list_select_related = ("loan", "lender")
    search_fields = ("loan__reference",)
    exclude = ("provider_ref",)
