"""The front door at ``/`` and the site's own error pages, in the visitor's language."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from apps.front import selectors

ADMIN_PREFIX = f"/{settings.ADMIN_URL}"


def _customer_lender_slug(request: HttpRequest) -> str:
    """The lender of the customer logged in on this browser, or ''."""
    session = request.session.get("customer") or {}
    lender_id = session.get("lender")
    if not lender_id:
        return ""
    lender = selectors.lender_list_for_chooser().filter(pk=lender_id).first()
    return lender.slug if lender else ""


def _continue(request: HttpRequest) -> tuple[str, str] | None:
    """Where this visitor was working, if they are logged in: (address, label)."""
    user = request.user
    if user.is_authenticated:
        if hasattr(user, "clerk"):
            return reverse("pos:home"), _("Continue at the counter")
        return reverse("admin:index"), _("Continue to the back office")
    slug = _customer_lender_slug(request)
    if slug:
        return reverse("customers:home", kwargs={"lender_slug": slug}), _("Continue to my loan")
    return None


@require_GET
def front_door(request: HttpRequest) -> HttpResponse:
    """Sends each kind of visitor where they belong; ``?lender=<slug>`` opens that lender's
    customer page (the chooser's answer). In the demo it also shows the demo's logins and
    its phones as they are now."""
    lenders = selectors.lender_list_for_chooser()
    chosen = request.GET.get("lender", "")
    if chosen and lenders.filter(slug=chosen).exists():
        return redirect("customers:login", lender_slug=chosen)
    context = {
        "lenders": lenders,
        "continue_to": _continue(request),
        "admin_url": reverse("admin:index"),
        "demo": settings.DEMO_SEED_ALLOWED,
    }
    if settings.DEMO_SEED_ALLOWED:
        context |= {
            "demo_logins": selectors.demo_login_list(),
            "demo_customers": selectors.demo_customer_list(),
            "demo_phones": selectors.demo_phone_list(),
        }
    return render(request, "front/door.html", context)


def _way_back(request: HttpRequest) -> tuple[str, str]:
    """The start of the part of the site the visitor was in: (address, label)."""
    path = request.path
    if path.startswith(ADMIN_PREFIX):
        return reverse("admin:index"), _("Back to the back office")
    if path.startswith("/pos/"):
        return reverse("pos:home"), _("Back to the counter")
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "my" and parts[2]:
        return f"/my/{parts[2]}/", _("Back to my loan")
    return "/", _("Back to the start page")


def _error(request: HttpRequest, status: int, title: str, explanation: str) -> HttpResponse:
    back, back_label = _way_back(request)
    context = {
        "status": status,
        "title": title,
        "explanation": explanation,
        "back": back,
        "back_label": back_label,
        "retry": request.path if status == 403 and request.method == "POST" else "",
    }
    return render(request, "front/error.html", context, status=status)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(
        request,
        404,
        _("This page does not exist"),
        _("The address may be mistyped, or what it showed is no longer there."),
    )


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(
        request,
        403,
        _("You may not open this page"),
        _("Your login does not give access to it. Log in as someone who may, or go back."),
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(
        request,
        500,
        _("Something went wrong on our side"),
        _("Nothing you did caused it, and we have been told. Try again in a moment."),
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent from a page too old to trust (its security token expired, or cookies are
    off): nothing was saved; the page is opened afresh to send it again."""
    return _error(
        request,
        403,
        _("This form has expired"),
        _(
            "Nothing was saved: the page was open too long, or this browser refuses cookies. "
            "Open the page again and send the form once more."
        ),
    )
