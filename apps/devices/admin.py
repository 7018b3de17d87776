from __future__ import annotations

import base64

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.devices.models import Device
from apps.devices.provisioning import payload_text, provisioning_qr_png, provisioning_qr_svg
from apps.devices.services import enrollment_token_mint
from apps.lenders.models import Membership
from apps.lenders.tenancy import LenderScopedAdmin, ReadOnlyAdminMixin


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    mint_roles = frozenset(Membership.Role)
    list_display = (
        "imei",
        "brand",
        "model_name",
        "status",
        "loan",
        "enrolled_at",
        "last_seen_at",
        "lender",
    )
    list_filter = ("status", "lender")
    search_fields = ("imei", "loan__reference", "serial")
    change_form_template = "admin/devices/device/change_form.html"

    def get_urls(self) -> list:  # type: ignore[type-arg]  # django-stubs: URLPattern list
        view = self.admin_site.admin_view(self.enrollment_code_view)
        return [path("<int:object_id>/enrollment-code/", view, name="devices_device_enrollment_code"),
                *super().get_urls()]  # fmt: skip

    def enrollment_code_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Mint a fresh enrollment code (the old one stops working) and show its QR code."""
        device = self.get_object(request, str(object_id))
        if device is None:
            raise Http404
        self.require_role(request, self.mint_roles, device)
        context = {**self.admin_site.each_context(request), "title": f"Enrollment code for {device}",
                   "device": device, "opts": self.model._meta}  # fmt: skip
        if request.method == "POST":
            try:
                minted = enrollment_token_mint(
                    device_id=device.pk, actor=Actor.agent(request.user, request)
                )
            except DomainError as exc:
                context["error"] = exc.message
            else:
                png = base64.b64encode(provisioning_qr_png(minted.payload)).decode()
                context.update(qr_svg=provisioning_qr_svg(minted.payload), qr_png=png,
                               expires_at=minted.expires_at, payload_bytes=len(payload_text(minted.payload)))  # fmt: skip
        return TemplateResponse(request, "admin/devices/device/enrollment_code.html", context)
