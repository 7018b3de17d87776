"""The two steps of the admin login after the password: set up, then verify, a second factor.

Both views run for a user who passed the password step but is not yet
verified, so they are not wrapped by ``admin_view`` (which demands
verification); each checks that state itself. Each sends the user on to a
``next=`` on this site, or else to the back office's index (as the password
step does: ``LOGIN_REDIRECT_URL``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp import user_has_device

from apps.accounts.errors import OtpAlreadyConfigured, OtpTokenInvalid
from apps.accounts.forms import OtpTokenForm
from apps.accounts.models import User
from apps.accounts.permissions import user_is_verified
from apps.accounts.services import (
    totp_device_confirm,
    totp_device_start,
    totp_secret_base32,
    user_otp_verify,
)
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.lenders.selectors import lender_id_for_user


def _next_url(request: HttpRequest, site: admin.AdminSite) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(f"{site.name}:index")


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


def _pending_user(request: HttpRequest) -> User | None:
    """The staff user who passed the password step, or None."""
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        return user
    return None


@sensitive_post_parameters("otp_token")
@never_cache
@csrf_protect
def otp_verify(request: HttpRequest, site: admin.AdminSite) -> HttpResponse:
    user = _pending_user(request)
    if user is None:
        return redirect(f"{site.name}:login")
    if user_is_verified(user):
        return HttpResponseRedirect(_next_url(request, site))
    if not user_has_device(user, confirmed=True):
        return redirect(
            f"{reverse(f'{site.name}:otp_setup')}?{urlencode({'next': _next_url(request, site)})}"
        )

    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = user_otp_verify(
                user=user,
                token=form.cleaned_data["otp_token"],
                lender_id=lender_id_for_user(user_id=user.pk),
                actor=Actor.agent(user, request),
            )
        except OtpTokenInvalid as exc:
            form.add_error(None, exc.message)
        else:
            otp_login(request, device)
            return HttpResponseRedirect(_next_url(request, site))
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": "Two-factor login",
        "form": form,
        "next": _next_url(request, site),
    }
    return TemplateResponse(request, "accounts/otp_verify.html", context)


@sensitive_post_parameters("otp_token")
@never_cache
@csrf_protect
def otp_setup(request: HttpRequest, site: admin.AdminSite) -> HttpResponse:
    user = _pending_user(request)
    if user is None:
        return redirect(f"{site.name}:login")
    if user_has_device(user, confirmed=True):
        return redirect(
            f"{reverse(f'{site.name}:login')}?{urlencode({'next': _next_url(request, site)})}"
        )

    try:
        device = totp_device_start(user=user)
    except DomainError as exc:  # operators are provisioned by another operator
        return TemplateResponse(
            request,
            "accounts/otp_refused.html",
            {**site.each_context(request), "title": "Two-factor login", "message": exc.message},
            status=exc.http_status,
        )
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            confirmation = totp_device_confirm(
                user=user,
                token=form.cleaned_data["otp_token"],
                lender_id=lender_id_for_user(user_id=user.pk),
                actor=Actor.agent(user, request),
            )
        except OtpAlreadyConfigured:  # a double submit: the first one set it up
            return redirect(
                f"{reverse(f'{site.name}:login')}?{urlencode({'next': _next_url(request, site)})}"
            )
        except OtpTokenInvalid as exc:
            form.add_error(None, exc.message)
        else:
            otp_login(request, confirmation.device)
            # the codes as a file to keep, in this page only: they are never shown again
            codes_text = "\n".join(
                [
                    str(_("Smart Collection backup codes for %(user)s") % {"user": user.username}),
                    str(_("Each code works once, if you lose your phone.")),
                    "",
                    *confirmation.backup_tokens,
                    "",
                ]
            )
            context = {
                **site.each_context(request),
                "title": _("Your backup codes"),
                "backup_tokens": confirmation.backup_tokens,
                "codes_text": codes_text,
                "codes_filename": f"backup-codes-{user.username}.txt",
                "next": _next_url(request, site),
            }
            return TemplateResponse(request, "accounts/otp_backup_codes.html", context)
    context = {
        **site.each_context(request),
        "title": "Set up two-factor login",
        "form": form,
        "qr_svg": _qr_svg(device.config_url),
        "secret": " ".join(_groups_of_four(totp_secret_base32(device))),
        "next": _next_url(request, site),
    }
    return TemplateResponse(request, "accounts/otp_setup.html", context)


def _groups_of_four(secret: str) -> list[str]:
    return [secret[i : i + 4] for i in range(0, len(secret), 4)]
