"""The clerk's point-of-sale pages: one screen a step, resumable, mobile first."""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any

from django.contrib.auth import logout
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from apps.collections.errors import (
    DownPaymentTooLarge,
    DownPaymentTooSmall,
    FinancedAmountTooSmall,
    ProductNotAvailable,
)
from apps.collections.selectors import loan_schedule
from apps.collections.services import (
    Quote,
    sale_consent_confirm,
    sale_consent_send,
    sale_consent_text,
    sale_customer_set,
    sale_down_payment_minimum,
    sale_phone_set,
    sale_plan_quote,
    sale_plan_set,
    sale_quote,
    sale_sign,
)
from apps.core.actor import Actor, ActorType
from apps.core.errors import DomainError, NotFound
from apps.core.money import money_format, quantize
from apps.counter import forms
from apps.customers.errors import (
    CustomerDetailsMismatch,
    NationalIdInvalid,
    PhoneInUse,
    PhoneInvalid,
)
from apps.devices.errors import ImeiInUse, ImeiInvalid
from apps.devices.provisioning import provisioning_qr
from apps.devices.services import enrollment_token_live_or_mint, enrollment_token_mint
from apps.devices.tac import tac_lookup
from apps.integrations.payments.registry import MPESA, STRIPE, providers_enabled
from apps.integrations.selectors import provider_account_get
from apps.lenders.selectors import loan_product_list_active
from apps.retailers.errors import SalePriceInvalid
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
        # back where the clerk was when the session ended (a safe next= only)
        return self.get_redirect_url() or reverse("pos:home")


def pos_logout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("pos:login")


# What a clerk sent from a step after their session had ended, kept in the (new) session
# across the login and sent again when the step opens: the sale goes on at that step with
# what was typed. Only the steps that take typing; consent and signing are asked afresh.
TYPED_KEY = "pos_typed"
STEPS_SENT_AGAIN = {"customer", "phone", "plan"}


def _typed_keep(request: HttpRequest) -> None:
    match = request.resolver_match
    if request.method == "POST" and match is not None and match.url_name in STEPS_SENT_AGAIN:
        data = {k: request.POST.getlist(k) for k in request.POST if k != "csrfmiddlewaretoken"}
        request.session[TYPED_KEY] = {"path": request.path, "data": data}


def _typed_send_again(request: HttpRequest) -> None:
    """Turn the step's GET into the POST the lost session refused, once."""
    typed = request.session.get(TYPED_KEY)
    if request.method != "GET" or not typed or typed.get("path") != request.path:
        return
    del request.session[TYPED_KEY]
    sent = QueryDict(mutable=True)
    for key, values in typed["data"].items():
        sent.setlist(key, values)
    request.method, request.POST = "POST", sent


def clerk_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        clerk = clerk_for_user(user=request.user)
        if clerk is None:
            _typed_keep(request)
            return redirect(f"{reverse('pos:login')}?{urlencode({'next': request.path})}")
        _typed_send_again(request)
        try:
            return view(request, clerk, *args, **kwargs)
        except NotFound as exc:  # another shop's sale looks like no sale at all
            raise Http404 from exc

    return wrapped


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, type=ActorType.CLERK)


# the page of each step, where "Recent sales" resumes a draft
STEP_PAGES = {step: f"pos:{step.value}" for step in STEPS}


def _page(
    request: HttpRequest,
    template: str,
    sale: Sale | None,
    step: Sale.Step | None = None,
    **context: Any,
) -> HttpResponse:
    """A counter page; a step's page is titled with the step's name and marks it current."""
    steps = (
        [
            (s, s.label, STEPS.index(s) <= STEPS.index(Sale.Step(sale.step)), s == step)
            for s in STEPS
        ]
        if sale
        else []
    )
    title = step.label if step else ""
    return render(
        request,
        f"counter/{template}",
        {"sale": sale, "steps": steps, "step_title": title, **context},
    )


def _resume_url(sale: Sale) -> str:
    """Where a sale in "Recent sales" opens: the receipt once signed, else its step."""
    if sale.loan_id:
        return reverse("pos:receipt", args=[sale.public_id])
    return reverse(STEP_PAGES[Sale.Step(sale.step)], args=[sale.public_id])


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
    sales = [(sale, _resume_url(sale)) for sale in sale_list_for_clerk(clerk=clerk)]
    return _page(request, "home.html", None, form=form, clerk=clerk, sales=sales)


def _step_view(
    step: Sale.Step,
    form_class: type,
    service: Callable[..., Sale],
    next_name: str,
    initial: Callable[[Sale], dict[str, Any]],
    form_kwargs: Callable[[Sale], dict[str, Any]] = lambda sale: {},
    error_fields: dict[str, str] | None = None,
    extra: Callable[[Sale, Any], dict[str, Any]] = lambda sale, form: {},
) -> Callable[..., HttpResponse]:
    """A step's page. ``error_fields`` maps a refusal's code to the field it is about, so
    the clerk reads it under that field; any other refusal shows above the form. Opened
    again, the page shows what the step recorded (``initial``)."""
    fields = error_fields or {}
    template = f"{step.value}.html"

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
        return _page(request, template, sale, step, form=form, **extra(sale, form))

    return view


def _customer_initial(sale: Sale) -> dict[str, Any]:
    """What step 1 recorded, for a sale opened again. The name and number shown are the
    ones the shop's clerk typed for this sale (a customer found again matched the number
    on record, and the shop's receipts name them); the language starts as the lender's."""
    if sale.customer is None:
        return {"locale": sale.lender.locale}
    customer = sale.customer
    return {
        "full_name": customer.full_name,
        "phone": customer.phone,
        "national_id": customer.national_id,
        "date_of_birth": customer.date_of_birth,
        "locale": customer.locale,
    }


def _amount(value: Any, sale: Sale) -> Any:
    """A stored amount as the clerk types it: the currency's minor units, not the column's."""
    return None if value is None else quantize(value, sale.lender.currency)


# Each refusal is shown under the field it is about; a number that is another customer's
# is shown under the number: the clerk checks it.
customer = _step_view(
    Sale.Step.CUSTOMER,
    forms.CustomerForm,
    sale_customer_set,
    "pos:phone",
    _customer_initial,
    error_fields={
        PhoneInUse.code: "phone",
        PhoneInvalid.code: "phone",
        CustomerDetailsMismatch.code: "phone",
        NationalIdInvalid.code: "national_id",
    },
)
phone = _step_view(
    Sale.Step.PHONE,
    forms.PhoneForm,
    sale_phone_set,
    "pos:plan",
    lambda s: {
        "imei": s.imei,
        "brand": s.brand,
        "model_name": s.model_name,
        "price": _amount(s.price_amount, s),
    },
    error_fields={
        ImeiInvalid.code: "imei",
        ImeiInUse.code: "imei",
        SalePriceInvalid.code: "price",
    },
    extra=lambda s, form: {"model_url": reverse("pos:phone_model")},
)


@clerk_required
def phone_model(request: HttpRequest, clerk: Clerk) -> JsonResponse:
    """The brand and model an IMEI's TAC names, to suggest at step 2 ({} when unknown)."""
    found = tac_lookup(request.GET.get("imei", ""))
    if found is None:
        return JsonResponse({})
    return JsonResponse({"brand": found.brand, "model_name": found.model_name})


def _plan_service(
    *, sale_id: int, clerk: Clerk, actor: Actor, product: int, down_payment: Any
) -> Sale:
    return sale_plan_set(
        sale_id=sale_id, clerk=clerk, product_id=product, down_payment=down_payment, actor=actor
    )


def quote_summary(quote: Quote) -> str:
    """The plan in one line, as the clerk reads it out: "12 (times) KES 1,650.00 · total
    KES 19,800.00 · first due 5 Jan" (the total is exact; the last installment may differ
    from the others by the rounding)."""
    lines, currency = quote.schedule.lines, quote.financed.currency
    first = lines[0]
    values = {
        "count": len(lines),
        "amount": money_format(first.total, currency),
        "total": money_format(quote.schedule.total, currency),
        "date": formats.date_format(first.due_date, "j M"),
    }
    # the last installment takes the rounding: the count times the first reads true
    if all(line.total == first.total for line in lines[:-1]):
        # the multiplication sign, as a price tag writes it
        text = _("%(count)s × %(amount)s · total %(total)s · first due %(date)s")  # noqa: RUF001
        return text % values
    return (
        _("%(count)s installments, the first %(amount)s · total %(total)s · first due %(date)s")
        % values
    )


def _minimum_text(sale: Sale, product_id: Any) -> str:
    """The line stating ``product_id``'s minimum down payment ("" when there is none)."""
    try:
        minimum = sale_down_payment_minimum(sale=sale, product_id=int(product_id))
    except (DomainError, TypeError, ValueError):
        return ""
    return _("Minimum down payment: %(minimum)s") % {
        "minimum": money_format(minimum.amount, minimum.currency)
    }


def _plan_extra(sale: Sale, form: Any) -> dict[str, Any]:
    """The plan page's minimum for the product shown, and the quote of what the step
    recorded (a sale opened again); the page's script keeps both current as the clerk types."""
    product_id = form["product"].value() or next(iter(form.fields["product"].choices), (None,))[0]
    summary = ""
    if not form.is_bound and sale.product_id and sale.down_payment_amount is not None:
        try:
            summary = quote_summary(sale_quote(sale=sale))
        except DomainError:
            summary = ""
    return {
        "minimum_text": _minimum_text(sale, product_id),
        "quote_text": summary,
        "quote_url": reverse("pos:plan_quote", args=[sale.public_id]),
    }


# The refusals a down payment can fix are shown under it.
_PLAN_ERROR_FIELDS = dict.fromkeys(
    (DownPaymentTooSmall.code, DownPaymentTooLarge.code, FinancedAmountTooSmall.code),
    "down_payment",
) | {ProductNotAvailable.code: "product"}
plan = _step_view(
    Sale.Step.PLAN,
    forms.PlanForm,
    _plan_service,
    "pos:consent",
    lambda s: {"product": s.product_id, "down_payment": _amount(s.down_payment_amount, s)},
    lambda s: {"products": loan_product_list_active(lender_id=s.lender_id)},
    error_fields=_PLAN_ERROR_FIELDS,
    extra=_plan_extra,
)


@clerk_required
def plan_quote(request: HttpRequest, clerk: Clerk, public_id: Any) -> JsonResponse:
    """The plan page's live quote for ``?product=&down_payment=``, computed by the schedule
    code signing uses (``sale_plan_quote``), stored nowhere. Answers the product's minimum
    down payment, and the quote's line or the refusal the step would give ("error"). Reads
    only; any method gets the same answer, so another shop's sale is a 404 whatever is asked."""
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    form = forms.PlanForm(request.GET, products=loan_product_list_active(lender_id=sale.lender_id))
    body = {"minimum": _minimum_text(sale, request.GET.get("product")), "quote": "", "error": ""}
    if not form.is_valid():
        errors = form.errors.get("down_payment") or form.errors.get("product")
        if request.GET.get("down_payment") and errors:
            body["error"] = errors[0]
        return JsonResponse(body)
    try:
        quote = sale_plan_quote(
            sale=sale,
            product_id=form.cleaned_data["product"],
            down_payment=form.cleaned_data["down_payment"],
        )
    except DomainError as exc:
        body["error"] = exc.message
    else:
        body["quote"] = quote_summary(quote)
    return JsonResponse(body)


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
        Sale.Step.CONSENT,
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
    return _page(
        request, "sign.html", sale, Sale.Step.SIGN, quote=sale_quote(sale=sale), error=error
    )


@clerk_required
def provision(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    """The QR code for the new phone, shown at once while the phone waits to enroll.

    A view of the page shows the phone's live code (neither used, revoked nor expired),
    made again from the master key, and mints one only when the phone has none: a reload,
    a back and forth or a browser's prefetch leaves working the code a phone may already
    have scanned (it enrolls minutes later, once the agent is installed). "Show a fresh
    code" (a POST) revokes the code and mints another, then shows it by a redirect, so a
    reload does not post again."""
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    if sale.device_id is None:
        return redirect("pos:sign", sale.public_id)
    context: dict[str, Any] = {}
    if sale.device.status == "pending":
        fresh = request.method == "POST"
        show = enrollment_token_mint if fresh else enrollment_token_live_or_mint
        try:
            code = show(device_id=sale.device_id, actor=_actor(request))
        except DomainError as exc:
            context["error"] = exc.message
        else:
            if fresh:
                return redirect("pos:provision", sale.public_id)
            svg, png = provisioning_qr(code.payload)
            context.update(
                qr_svg=svg, expires_at=code.expires_at, qr_png=base64.b64encode(png).decode()
            )
    return _page(request, "provision.html", sale, Sale.Step.PROVISION, **context)


@clerk_required
def status(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    return JsonResponse({"device": sale.device.status if sale.device_id else None})


def _how_to_pay(sale: Sale, reference: str) -> str:
    """How the customer pays loan ``reference``, for the receipt: the provider and account."""
    methods = providers_enabled(lender_id=sale.lender_id)
    if MPESA in methods:
        account = provider_account_get(lender_id=sale.lender_id, provider=MPESA)
        paybill = str(account.settings.get("shortcode", "")) if account else ""
        if paybill:
            return _(
                "M-Pesa: Lipa na M-Pesa, Pay Bill, business number %(paybill)s, "
                "account number %(reference)s."
            ) % {"paybill": paybill, "reference": reference}
    if STRIPE in methods:
        return _("By card on the customer's page below.")
    return _("On the customer's page below.")


@clerk_required
def receipt(request: HttpRequest, clerk: Clerk, public_id: Any) -> HttpResponse:
    sale = sale_get_for_clerk(public_id=public_id, clerk=clerk)
    if sale.loan is None:
        return redirect("pos:sign", sale.public_id)
    loan = sale.loan
    schedule = loan_schedule(loan=loan)
    total = sum((row.due.amount for row in schedule), start=Decimal(0))
    customer_page = request.build_absolute_uri(
        reverse("customers:home", kwargs={"lender_slug": sale.lender.slug})
    )
    return _page(
        request,
        "receipt.html",
        sale,
        schedule=schedule,
        down_payment=money_format(loan.down_payment_amount, loan.currency),
        total=money_format(total, loan.currency),
        how_to_pay=_how_to_pay(sale, loan.reference),
        customer_page=customer_page,
    )
