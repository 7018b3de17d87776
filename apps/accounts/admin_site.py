"""The back office: Django's admin behind password plus a second factor, on every page."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite

from apps.accounts import views
from apps.accounts.permissions import user_is_verified
from apps.lenders.tenancy import LenderScopedAdmin, PlatformAdminMixin


class SmartCollectionAdminSite(OTPAdminSite):
    """Every view wrapped by ``admin_view`` demands a verified OTP device.

    The login is three short steps: password (django-axes counts failures),
    then either the code from the authenticator app or, at first login,
    scanning the QR code that sets it up.
    """

    site_header = _("Smart Collection back office")
    site_title = _("Smart Collection")
    index_title = _("Back office")
    site_url = None  # no public home page to link to
    login_form = AdminAuthenticationForm
    login_template = "admin/login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and user.is_active
            and user.is_staff
            and not user_is_verified(user)
        ):
            return views.otp_verify(request, self)
        return super().login(request, extra_context)

    def get_urls(self) -> list[URLPattern | URLResolver]:
        own = [
            path("2fa/setup/", partial(views.otp_setup, site=self), name="otp_setup"),
            path("2fa/verify/", partial(views.otp_verify, site=self), name="otp_verify"),
        ]
        return own + super().get_urls()

    def restrict_unscoped_admins(self) -> None:
        """Make every admin either lender-scoped or operators-only.

        Our own admins must choose (a forgotten choice fails at startup);
        admins that third-party apps register become operators-only.
        """
        for model, model_admin in list(self._registry.items()):
            if isinstance(model_admin, LenderScopedAdmin | PlatformAdminMixin):
                continue
            if model.__module__.startswith("apps."):
                raise ImproperlyConfigured(
                    f"{type(model_admin).__name__} must inherit LenderScopedAdmin or PlatformAdmin"
                )
            restricted = type(
                f"Platform{type(model_admin).__name__}", (PlatformAdminMixin, type(model_admin)), {}
            )
            self._registry[model] = restricted(model, self)
