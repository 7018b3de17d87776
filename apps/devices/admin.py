"""Back office for phones: sync state, delivery log, signing keys. Read-only but for
the enrollment code, which a service mints.

The raw push address (``fcm_token``) and the device credential's hash are never
shown: a page lists what kind of push address the phone has and whether FCM
still accepts it.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.db.models import F, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.devices.models import Device, DeviceEvent, DeviceState, LenderKey, PushNudge
from apps.devices.provisioning import payload_text, provisioning_qr
from apps.devices.selectors import (
    device_list_out_of_sync,
    device_list_with_sync_lag,
    device_state_current,
)
from apps.devices.services import enrollment_token_mint
from apps.lenders.models import Membership
from apps.lenders.tenancy import (
    LenderScopedAdmin,
    ReadOnlyAdminMixin,
    ScopedReadOnlyInline,
    scope_for_user,
)

INLINE_ROWS = 20  # newest rows per inline on a device's page; the full log has its own list
_STATE_ATTR = "_admin_current_state"


def duration_text(lag: timedelta) -> str:
    """``2 d 3 h``, ``2 h 5 min``, ``10 min``: coarse enough to read at a glance."""
    minutes = max(int(lag.total_seconds()) // 60, 0)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return str(_("%(days)d d %(hours)d h") % {"days": days, "hours": hours})
    if hours:
        return str(_("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes})
    if minutes:
        return str(_("%(minutes)d min") % {"minutes": minutes})
    return str(_("under a minute"))


def _when(moment: datetime | None) -> str:
    # a read-only field computed by a method is shown with str(), unlike a model field
    return str(display_for_value(moment, "-"))


class OutOfSyncFilter(admin.SimpleListFilter):
    """Phones behind their desired state for longer than the chosen time (filtered in SQL)."""

    title = _("out of sync for")
    parameter_name = "behind"
    hours = {"1": 1, "6": 6, "24": 24}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (key, ngettext("More than %(n)s hour", "More than %(n)s hours", h) % {"n": h})
            for key, h in self.hours.items()
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Device]) -> QuerySet[Device]:
        hours = self.hours.get(self.value() or "")
        if hours is None:
            return queryset
        return device_list_out_of_sync(queryset, longer_than=timedelta(hours=hours))


class _LatestRowsFormSet(BaseInlineFormSet):
    """Only the first ``INLINE_ROWS`` rows in the inline's ordering (newest first).

    The slice is taken after the formset has filtered by the parent device: an
    inline's own ``get_queryset`` cannot slice, because the formset filters it.
    """

    def get_queryset(self) -> Any:
        if not hasattr(self, "_latest_rows"):
            self._latest_rows = super().get_queryset()[:INLINE_ROWS]
        return self._latest_rows


class _DeviceLogInline(ScopedReadOnlyInline):
    formset = _LatestRowsFormSet

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # rows follow their device, which the user could open; scoping them too costs nothing
        return scope_for_user(super().get_queryset(request), request.user)


class DeviceStateInline(_DeviceLogInline):
    model = DeviceState
    verbose_name_plural = f"Desired states (latest {INLINE_ROWS})"
    fields = ("version", "level", "created_at", "key_version")
    readonly_fields = fields
    ordering = ("-version",)


class DeviceEventInline(_DeviceLogInline):
    model = DeviceEvent
    verbose_name_plural = f"Events reported by the phone (latest {INLINE_ROWS})"
    fields = ("kind", "occurred_at", "detail")
    readonly_fields = fields
    ordering = ("-occurred_at", "-id")


class PushNudgeInline(_DeviceLogInline):
    model = PushNudge
    verbose_name_plural = f"Delivery log (latest {INLINE_ROWS} pushes)"
    fields = ("version", "status", "attempts", "error_code", "message_id", "sent_at", "created_at")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    mint_roles = frozenset(Membership.Role)
    list_display = (
        "imei",
        "brand",
        "model_name",
        "status",
        "loan",
        "desired_version",
        "acked_version",
        "last_check_in",
        "last_ack",
        "lag",
        "push",
        "lender",
    )
    list_filter = ("status", OutOfSyncFilter, "lender")
    search_fields = ("imei", "loan__reference", "serial")
    change_form_template = "admin/devices/device/change_form.html"
    # fcm_token and credential_hash are left out on purpose (module docstring)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "imei",
                    "brand",
                    "model_name",
                    "serial",
                    "status",
                    "loan",
                    "lender",
                    "enrolled_at",
                    "released_at",
                )
            },
        ),
        (
            "Desired state",
            {
                "fields": (
                    "desired_version",
                    "state_level",
                    "state_issued_at",
                    "state_valid_until",
                    "state_document",
                )
            },
        ),
        (
            "Phone",
            {
                "fields": (
                    "acked_version",
                    "last_ack",
                    "last_ack_error",
                    "last_check_in",
                    "lag",
                    "battery_percent",
                    "agent_version",
                    "android_version",
                    "key_version",
                    "push_address",
                )
            },
        ),
    )
    readonly_fields = (
        "state_level",
        "state_issued_at",
        "state_valid_until",
        "state_document",
        "last_check_in",
        "last_ack",
        "lag",
        "push_address",
    )
    inlines = (DeviceStateInline, DeviceEventInline, PushNudgeInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Device]:
        return device_list_with_sync_lag(super().get_queryset(request))

    # --- sync ---------------------------------------------------------------
    # NULLs first ascending: in-sync phones, then the shortest lag; descending puts
    # the phones furthest behind on top and the in-sync ones last.
    @admin.display(description=_("Sync lag"), ordering=F("sync_lag").asc(nulls_first=True))
    def lag(self, device: Device) -> str:
        if device.desired_version == 0:
            return "-"  # no state issued yet (not enrolled)
        lag: timedelta | None = getattr(device, "sync_lag", None)
        if lag is None:
            return str(_("in sync"))
        return str(_("%(lag)s behind") % {"lag": duration_text(lag)})

    @admin.display(description=_("Last check-in"), ordering="last_seen_at")
    def last_check_in(self, device: Device) -> str:
        return _when(device.last_seen_at)

    @admin.display(description=_("Last ack"), ordering="acked_at")
    def last_ack(self, device: Device) -> str:
        return _when(device.acked_at)

    @admin.display(description=_("Push"))
    def push(self, device: Device) -> str:
        if device.fcm_token_dead_at is not None:
            return str(_("SMS fallback"))
        return str(_("push") if device.fcm_token else _("no address"))

    @admin.display(description=_("Push address"))
    def push_address(self, device: Device) -> str:
        if not device.fcm_token:
            return str(_("none reported"))
        kind = device.get_push_address_kind_display()
        if device.fcm_token_dead_at is None:
            return str(_("%(kind)s: alive") % {"kind": kind})
        return str(
            _("%(kind)s: dead since %(when)s (SMS fallback)")
            % {"kind": kind, "when": _when(device.fcm_token_dead_at)}
        )

    # --- the current desired state -------------------------------------------
    def _current_state(self, device: Device) -> DeviceState | None:
        # fetched once per page: several read-only fields show parts of it
        if not hasattr(device, _STATE_ATTR):
            setattr(device, _STATE_ATTR, device_state_current(device=device))
        state: DeviceState | None = getattr(device, _STATE_ATTR)
        return state

    @admin.display(description=_("Level"))
    def state_level(self, device: Device) -> str:
        state = self._current_state(device)
        return state.get_level_display() if state else "-"

    @admin.display(description=_("Issued at"))
    def state_issued_at(self, device: Device) -> str:
        state = self._current_state(device)
        return _when(datetime.fromisoformat(state.document["issued_at"]) if state else None)

    @admin.display(description=_("Valid until (offline lease)"))
    def state_valid_until(self, device: Device) -> str:
        state = self._current_state(device)
        return _when(datetime.fromisoformat(state.document["valid_until"]) if state else None)

    @admin.display(description=_("Signed document"))
    def state_document(self, device: Device) -> SafeString | str:
        state = self._current_state(device)
        if state is None:
            return "-"
        text = json.dumps(state.document, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="desired-document">{}</pre>', text)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.enrollment_code_view)
        return [
            path("<int:object_id>/enrollment-code/", view, name="devices_device_enrollment_code"),
            *super().get_urls(),
        ]

    def enrollment_code_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Mint a fresh enrollment code (the old one stops working) and show its QR code."""
        device = self.get_object(request, str(object_id))
        if device is None:
            raise Http404
        self.require_role(request, self.mint_roles, device)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Enrollment code for {device}",
            "device": device,
            "opts": self.model._meta,
        }
        if request.method == "POST":
            try:
                minted = enrollment_token_mint(
                    device_id=device.pk, actor=Actor.from_request(request)
                )
            except DomainError as exc:
                context["error"] = exc.message
            else:
                svg, png = provisioning_qr(minted.payload)
                context.update(
                    qr_svg=svg,
                    qr_png=base64.b64encode(png).decode(),
                    expires_at=minted.expires_at,
                    payload_bytes=len(payload_text(minted.payload)),
                )
        return TemplateResponse(request, "admin/devices/device/enrollment_code.html", context)


@admin.register(PushNudge)
class PushNudgeAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """The delivery log: one row per wake-up push, with its attempts and its end."""

    list_display = (
        "created_at",
        "device",
        "version",
        "status",
        "attempts",
        "error_code",
        "message_id",
        "sent_at",
        "lender",
    )
    list_filter = ("status", "lender")
    list_select_related = ("device", "lender")
    search_fields = ("device__imei",)
    search_help_text = "Search by the phone's IMEI."

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # the model's verbose name is "push nudge"; renaming it needs a migration
        return super().changelist_view(
            request, {"title": "Push delivery log", **(extra_context or {})}
        )


@admin.register(LenderKey)
class LenderKeyAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    """The public halves of each lender's state-signing keys (version 1 has no row)."""

    list_display = ("lender", "version", "public_key", "created_at")
    list_filter = ("lender",)
    fields = ("lender", "version", "public_key", "created_at")
    readonly_fields = fields

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return super().changelist_view(
            request, {"title": "Lender signing keys", **(extra_context or {})}
        )
