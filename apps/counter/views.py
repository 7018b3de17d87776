"""The clerk's point-of-sale pages: one screen a step, resumable, mobile first."""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import logout
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from apps.collections.errors import (
    DownPaymentTooLarge,
    DownPaymentTooSmall,
    FinancedAmountTooSmall,
)
from apps.collections.selectors import loan_schedule
from apps.collections.services import (
    sale_consent_confirm,
    sale_consent_send,
    sale_consent_text,
    sale_customer_set,
    sale_phone_set,
    sale_plan_set,
    sale_quote,
    sale_sign,
)
from apps.core.actor import Actor, ActorType
from apps.core.errors import DomainError, NotFound
from apps.counter import forms
from apps.customers.errors import PhoneInUse
from apps.devices.provisioning import provisioning_qr
from apps.devices.services import enrollment_token_mint
from apps.lenders.selectors import loan_product_list_active
from apps.retailers.models import Clerk, Sale
from apps.retailers.selectors import clerk_for_user, sale_get_for_clerk, sale_list_for_clerk
from apps.retailers.services import sale_start

STEPS = [
    Sale.Step.CUSTOMER,
    Sale.Step.PHONE,
    Sale.Step.PLAN,
    Sale.Step.CONSENT,
    Sale.Step.SIGN,
    Sale.Step.PROVISION,
]


class ClerkLoginView(LoginView):
    template_name = "counter/login.html"
    redirect_authenticated_user = False

    def form_valid(self, form: Any) -> HttpResponse:
        if clerk_for_user(user=form.get_user()) is None:
            form.add_error(None, "This login is not a shop clerk's.")
            return self.form_invalid(form)
        return super().form_valid(form)

    def get_success_url(self) -> str:
        return reverse("pos:home")


def pos_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("pos:login")


def clerk_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        clerk = clerk_for_user(user=request.user)
        if clerk is None:
            return redirect(f"{reverse('pos:login')}?next={request.path}")
        try:
            return view(request, clerk, *args, **kwargs)
        except NotFound as exc:  # another shop's sale looks like no sale at all
            raise Http404 from exc

    return wrapped


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, type=ActorType.CLERK)


def _page(request: HttpRequest, template: str, sale: Sale | None, **context: Any) -> HttpResponse:
    steps = (
        [
            (step, step.label, STEPS.index(step) <= STEPS.index(Sale.Step(sale.step)))
            for step in STEPS
        ]
        if sale
        else []
    )
    return render(request, f"counter/{template}", {"sale": sale, "steps": steps, **context})


@clerk_required
def home(request: HttpRequest, clerk: Clerk) -> HttpResponse:
    form = forms.StartForm(request.POST or None)
    form.fields["lender"].choices = [
        (lender.pk, lender.name) for lender in clerk.shop.lenders.all()
    ]
    if request.method == "POST" and form.is_valid():
        try:
            sale = sale_start(
                clerk=clerk, lender_id=form.cleaned_data["lender"], actor=_actor(request)
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("pos:customer", sale.public_id)
    return _page(
        request, "home.html", None, form=form, clerk=clerk, sales=sale_list_for_clerk(clerk=clerk)
    )


def _step_view(
    form_class: type,
    service: Callable[..., Sale],
    template: str,
    next_name: str,
    initial: Callable[[Sale], dict[str, Any]],
    form_kwargs: Callable[[Sale], dict[str, Any]] = lambda sale: {},
    error_fields: dict[str, str] | None = None,
) -> Callable[..., HttpResponse]:
    """A step's page. ``error_fields`` maps a refusal's code to the field it is about, so
    the clerk reads it under that field; any other refusal shows above the form."""
    fields = error_fields or {}

    @clerk_required
    def view(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
        sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
        if sale.loan_id:
            return redirect("pos:provision", sale.public_id)
        form = form_class(request.POST or None, initial=initial(sale), **form_kwargs(sale))
        if request.method == "POST" and form.is_valid():
            try:
                service(sale_id=sale.pk, clerk=clerk, actor=_actor(request), **form.cleaned_data)
            except DomainError as exc:
                form.add_error(fields.get(exc.code), exc.message)
            else:
                return redirect(next_name, sale.public_id)
        return _page(request, template, sale, form=form)

    return view


# Only the national id is shown again: the name and phone on record stay private.
# A number that is another customer's is shown under the number: the clerk checks it.
customer = _step_view(
    forms.CustomerForm,
    sale_customer_set,
    "customer.html",
    "pos:phone",
    lambda s: {"national_id": s.customer.national_id} if s.customer else {},
    error_fields={PhoneInUse.code: "phone"},
)
phone = _step_view(
    forms.PhoneForm,
    sale_phone_set,
    "phone.html",
    "pos:plan",
    lambda s: {
        "imei": s.imei,
        "brand": s.brand,
        "model_name": s.model_name,
        "price": s.price_amount,
    },
)


def _plan_service(
    *, sale_id: int, clerk: Clerk, actor: Actor, product: int, down_payment: Any
) -> Sale:
    return sale_plan_set(
        sale_id=sale_id, clerk=clerk, product_id=product, down_payment=down_payment, actor=actor
    )


# The refusals a down payment can fix are shown under it.
_PLAN_ERROR_FIELDS = dict.fromkeys(
    (DownPaymentTooSmall.code, DownPaymentTooLarge.code, FinancedAmountTooSmall.code),
    "down_payment",
)
plan = _step_view(
    forms.PlanForm,
    _plan_service,
    "plan.html",
    "pos:consent",
    lambda s: {"product": s.product_id, "down_payment": s.down_payment_amount},
    lambda s: {"products": loan_product_list_active(lender_id=s.lender_id)},
    error_fields=_PLAN_ERROR_FIELDS,
)


@clerk_required
def consent(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    if sale.loan_id:
        return redirect("pos:provision", sale.public_id)
    if sale.product_id is None:
        return redirect("pos:plan", sale.public_id)
    form = forms.ConsentCodeForm(request.POST if request.POST.get("action") == "confirm" else None)
    error = ""
    try:
        if request.method == "POST" and request.POST.get("action") == "send":
            sale = sale_consent_send(sale_id=sale.pk, clerk=clerk, actor=_actor(request))
        elif request.method == "POST" and form.is_valid():
            sale_consent_confirm(
                sale_id=sale.pk, clerk=clerk, code=form.cleaned_data["code"], actor=_actor(request)
            )
            return redirect("pos:sign", sale.public_id)
        text = sale_consent_text(sale=sale)
    except DomainError as exc:
        error, text = exc.message, sale_consent_text(sale=sale)
    return _page(
        request,
        "consent.html",
        sale,
        form=form,
        error=error,
        consent_text=text,
        quote=sale_quote(sale=sale),
        code_sent=sale.consent_challenge_id is not None,
    )


@clerk_required
def sign(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    if sale.consent_id is None:
        return redirect("pos:consent", sale.public_id)
    error = ""
    if request.method == "POST":
        try:
            sale = sale_sign(sale_id=sale.pk, clerk=clerk, actor=_actor(request))
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("pos:provision", sale.public_id)
    return _page(request, "sign.html", sale, quote=sale_quote(sale=sale), error=error)


@clerk_required
def provision(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    """The QR code for the new phone. Each POST shows a fresh code (the old one stops working)."""
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    if sale.device_id is None:
        return redirect("pos:sign", sale.public_id)
    context: dict[str, Any] = {}
    if request.method == "POST" and sale.device.status == "pending":
        try:
            minted = enrollment_token_mint(device_id=sale.device_id, actor=_actor(request))
        except DomainError as exc:
            context["error"] = exc.message
        else:
            svg, png = provisioning_qr(minted.payload)
            context.update(
                qr_svg=svg, expires_at=minted.expires_at, qr_png=base64.b64encode(png).decode()
            )
    return _page(request, "provision.html", sale, **context)


@clerk_required
def status(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    return JsonResponse({"device": sale.device.status if sale.device_id else None})


@clerk_required
def receipt(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    if sale.loan_id is None:
        return redirect("pos:sign", sale.public_id)
    return _page(request, "receipt.html", sale, schedule=loan_schedule(loan=sale.loan))
