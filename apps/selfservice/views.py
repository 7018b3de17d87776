"""The customer's own pages: log in with a code by SMS, see each loan and the phone in plain
words, pay, promise to pay, ask for a hardship pause. Mobile first: the customer is often
on the restricted phone itself, whose browser and payment path always work."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.collections.models import Loan
from apps.collections.selectors import (
    loan_list_for_customer,
    loan_overview,
    payment_attempt_showing,
    payment_for_loan,
)
from apps.collections.services import (
    loan_hardship_request,
    loan_promise_record,
    payment_attempt_start,
)
from apps.core.actor import Actor, client_ip
from apps.core.errors import DomainError
from apps.core.money import money_format as money_text
from apps.core.ratelimit import window_count
from apps.customers.consent import account_reading_text_build
from apps.customers.errors import LoginTooManyFromAddress
from apps.customers.models import Customer
from apps.customers.selectors import (
    account_reading_consent_in_force,
    consent_record_for_loan,
    customer_get_for_session,
)
from apps.customers.services import (
    ACCOUNT_READING_DAYS,
    LOGIN_WINDOW,
    account_reading_consent_give,
    account_reading_consent_revoke,
    customer_login_check,
    customer_login_code_request,
    customer_login_link_use,
    phone_to_e164,
)
from apps.devices.models import OfflineToken
from apps.devices.offline import group
from apps.devices.selectors import (
    offline_code_digits,
    offline_code_waiting_for_loan,
    phone_sync_for_loan,
)
from apps.integrations.funds import FundsAccount, funds_account_for
from apps.integrations.payments.checkout import Checkout, CheckoutUnavailable, checkout_url
from apps.integrations.payments.registry import MPESA, STRIPE, providers_enabled
from apps.integrations.selectors import provider_account_get
from apps.lenders.models import Lender
from apps.lenders.selectors import lender_get_by_slug
from apps.selfservice import forms
from apps.selfservice.wording import (
    SCHEDULE_STATUS,
    OfflineCodeBox,
    attempt_words,
    grace_words,
    next_words,
    offline_code_box,
    phone_class,
    phone_words,
)

SESSION_KEY = "customer"  # {"id": customer id, "lender": lender id}
PHONE_KEY = "customer_login_phone"
SESSION_SECONDS = 30 * 60  # of inactivity
# Codes asked for and codes typed from one client address per LOGIN_WINDOW: high, since a
# carrier puts many customers behind one address; each number has its own, lower limit
# (customers.services.LOGIN_TRIES_PER_NUMBER).
LOGIN_TRIES_PER_ADDRESS = 200


def _lender(slug: str) -> Lender:
    try:
        return lender_get_by_slug(slug=slug)
    except DomainError as exc:
        raise Http404 from exc


def _actor(request: HttpRequest, customer_id: int | None = None) -> Actor:
    return Actor.customer(request, customer_id)


def customer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The logged-in customer of this lender, or the login page."""

    @wraps(view)
    def wrapped(request: HttpRequest, lender_slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
        lender = _lender(lender_slug)
        session = request.session.get(SESSION_KEY) or {}
        customer = None
        if session.get("lender") == lender.pk:
            customer = customer_get_for_session(lender_id=lender.pk, customer_id=session.get("id"))
        if customer is None:
            return redirect("customers:login", lender_slug=lender.slug)
        request.session.set_expiry(SESSION_SECONDS)
        return view(request, lender, customer, *args, **kwargs)

    return wrapped


# How a message after an action looks (the page's classes): done, refused, or just so.
SUCCESS, PROBLEM, NOTICE = "success", "problem", "notice"


def _flash_set(request: HttpRequest, text: str, kind: str = NOTICE) -> None:
    request.session["customer_flash"] = {"text": text, "kind": kind}


def _flash(request: HttpRequest) -> dict[str, str] | None:
    """The message the last action left for the page, once."""
    flash = request.session.pop("customer_flash", None)
    if not flash:
        return None
    if isinstance(flash, str):  # left by the pages before messages had a kind
        return {"text": flash, "kind": NOTICE}
    return dict(flash)


def _address_try(request: HttpRequest) -> None:
    """Count a login try from the client's address; LoginTooManyFromAddress past the limit."""
    window = int(LOGIN_WINDOW.total_seconds())
    tries = window_count(
        scope="customer-login-address", key=client_ip(request) or "-", window_seconds=window
    )
    if tries.hits > LOGIN_TRIES_PER_ADDRESS:
        raise LoginTooManyFromAddress(
            limit=LOGIN_TRIES_PER_ADDRESS, window=window // 60, minutes=tries.minutes_left
        )


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest, lender_slug: str) -> HttpResponse:
    lender = _lender(lender_slug)
    form = forms.PhoneForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _address_try(request)
            customer_login_code_request(
                lender_id=lender.pk, phone=form.cleaned_data["phone"], actor=_actor(request)
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            request.session[PHONE_KEY] = form.cleaned_data["phone"]
            return redirect("customers:code", lender_slug=lender.slug)
    return render(request, "selfservice/login.html", {"lender": lender, "form": form})


@require_http_methods(["GET", "POST"])
def code(request: HttpRequest, lender_slug: str) -> HttpResponse:
    lender = _lender(lender_slug)
    phone = request.session.get(PHONE_KEY)
    if not phone:
        return redirect("customers:login", lender_slug=lender.slug)
    form = forms.CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _address_try(request)
            customer = customer_login_check(
                lender_id=lender.pk,
                phone=phone,
                code=form.cleaned_data["code"],
                actor=_actor(request),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            return _logged_in(request, lender, customer)
    return render(request, "selfservice/code.html", {"lender": lender, "form": form})


def _logged_in(request: HttpRequest, lender: Lender, customer: Customer) -> HttpResponse:
    request.session.cycle_key()  # a new session id for the logged-in customer
    request.session.pop(PHONE_KEY, None)
    request.session[SESSION_KEY] = {"id": customer.pk, "lender": lender.pk}
    request.session.set_expiry(SESSION_SECONDS)
    response = redirect("customers:home", lender_slug=lender.slug)
    if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
        # the customer's own language, unless they chose one on this browser (kept)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            customer.locale,
            samesite="Lax",
            secure=request.is_secure(),
        )
    return response


@require_GET
def link(request: HttpRequest, lender_slug: str, token: str) -> HttpResponse:
    """The link the lender's app on the phone opens: logged in once, within minutes."""
    lender = _lender(lender_slug)
    try:
        _address_try(request)
    except LoginTooManyFromAddress:
        return redirect("customers:login", lender_slug=lender.slug)
    try:
        customer = customer_login_link_use(lender_id=lender.pk, token=token, actor=_actor(request))
    except DomainError as exc:
        context = {"lender": lender, "form": forms.PhoneForm(), "error": exc.message}
        return render(request, "selfservice/login.html", context, status=410)
    return _logged_in(request, lender, customer)


@require_POST
def logout(request: HttpRequest, lender_slug: str) -> HttpResponse:
    request.session.flush()
    return redirect("customers:login", lender_slug=lender_slug)


def _loan_cards(lender: Lender, customer: Customer) -> list[dict[str, Any]]:
    cards = []
    for loan in loan_list_for_customer(customer_id=customer.pk, lender_id=lender.pk):
        overview = loan_overview(loan=loan)
        phone = phone_sync_for_loan(loan_id=loan.pk, lender_id=lender.pk)
        cards.append(
            {
                "overview": overview,
                "phone": phone,
                "phone_words": phone_words(overview, phone),
                "phone_class": phone_class(overview, phone),
                "next_words": next_words(overview),
                "offline_code": _offline_code(loan_id=loan.pk, lender_id=lender.pk),
                "grace_words": grace_words(overview, phone, hours=lender.emergency_grace_hours),
                "pay_amount": overview.pay_amount,
                "attempt": (
                    attempt := payment_attempt_showing(loan_id=loan.pk, lender_id=lender.pk)
                ),
                "attempt_words": attempt_words(attempt, timezone_name=lender.timezone),
                "schedule": [(row, SCHEDULE_STATUS[row.status]) for row in overview.schedule],
            }
        )
    return cards


def _offline_code(*, loan_id: int, lender_id: int) -> OfflineCodeBox | None:
    """The unlock code the loan's phone still needs (it has not taken the state a payment
    wrote: it may be offline), or None."""
    code = offline_code_waiting_for_loan(loan_id=loan_id, lender_id=lender_id)
    if code is None:
        return None
    return offline_code_box(
        digits=group(offline_code_digits(code=code)),
        releases=code.kind == OfflineToken.Kind.DISABLE_PAYG,
    )


@require_GET
@never_cache  # it may show an unlock code: no browser or proxy keeps a copy
@customer_required
def home(request: HttpRequest, lender: Lender, customer: Customer) -> HttpResponse:
    cards = _loan_cards(lender, customer)
    return render(
        request,
        "selfservice/home.html",
        {
            "lender": lender,
            "customer": customer,
            "cards": cards,
            "pay": _pay_methods(lender),
            "mpesa_form": forms.MpesaPayForm(initial={"phone": customer.phone}),
            # back from a checkout page: thanked only if no voucher is still waiting for cash
            "paid": request.GET.get("paid") == "1"
            and not any(c["attempt"] and c["attempt"].status == "pending" for c in cards),
            "promise_form": forms.PromiseForm(),
            "hardship_form": forms.HardshipForm(),
            "flash": _flash(request),
            "reading": _account_reading(lender, customer),
        },
    )


def _account_reading(lender: Lender, customer: Customer) -> dict[str, Any]:
    """The consent to account reading the page offers (where the lender takes funds alerts),
    or the one in force and how to withdraw it."""
    account = funds_account_for(lender_slug=lender.slug)
    in_force = account_reading_consent_in_force(customer_id=customer.pk)
    if account is None and in_force is None:
        return {"offered": False}
    text = ""
    if account is not None and in_force is None:
        text = account_reading_text_build(
            lender_name=lender.name,
            provider_name=account.aggregator,
            days=ACCOUNT_READING_DAYS,
            locale=customer.locale,
        )
    return {"offered": True, "in_force": in_force, "text": text}


def _funds_account(lender: Lender) -> FundsAccount:
    account = funds_account_for(lender_slug=lender.slug)
    if account is None:
        raise Http404
    return account


@require_POST
@customer_required
def account_reading_give(request: HttpRequest, lender: Lender, customer: Customer) -> HttpResponse:
    """The customer agrees to the text the page showed (built again from the same values)."""
    account = _funds_account(lender)
    account_reading_consent_give(
        customer_id=customer.pk,
        lender_id=lender.pk,
        lender_name=lender.name,
        provider=account.aggregator,
        provider_name=account.aggregator,
        actor=_actor(request, customer.pk),
    )
    _flash_set(request, _("Thank you. Your consent is recorded."), SUCCESS)
    return redirect("customers:home", lender_slug=lender.slug)


@require_POST
@customer_required
def account_reading_revoke(
    request: HttpRequest, lender: Lender, customer: Customer
) -> HttpResponse:
    try:
        account_reading_consent_revoke(
            customer_id=customer.pk, lender_id=lender.pk, actor=_actor(request, customer.pk)
        )
    except DomainError as exc:
        _flash_set(request, exc.message, PROBLEM)
    else:
        _flash_set(
            request,
            _("Your consent is withdrawn: we no longer receive alerts about your account."),
            SUCCESS,
        )
    return redirect("customers:home", lender_slug=lender.slug)


@require_GET
@customer_required
def status(request: HttpRequest, lender: Lender, customer: Customer) -> JsonResponse:
    """What the page shows about each loan now; the page asks every few seconds."""
    return JsonResponse(
        {
            "loans": [
                {
                    "reference": c["overview"].loan.reference,
                    "stage": c["overview"].stage,
                    "phone": c["phone_words"],
                    "phone_class": c["phone_class"],
                    "next": c["next_words"],
                    "applied": c["phone"].applied if c["phone"] else None,
                    "offline_code": c["offline_code"] is not None,
                    "payment": c["attempt_words"],
                }
                for c in _loan_cards(lender, customer)
            ]
        }
    )


def _own_loan(lender: Lender, customer: Customer, reference: str) -> Loan:
    """The customer's loan ``reference`` (one the pages show), or 404."""
    for loan in loan_list_for_customer(customer_id=customer.pk, lender_id=lender.pk):
        if loan.reference == reference:
            return loan
    raise Http404


def _pay_methods(lender: Lender) -> dict[str, Any]:
    """How the customer can pay this lender: the providers in use (the paybill's number for
    paying from the M-Pesa menu), else the demo checkout where it runs."""
    methods = providers_enabled(lender_id=lender.pk)
    paybill = ""
    if MPESA in methods:
        account = provider_account_get(lender_id=lender.pk, provider=MPESA)
        paybill = str(account.settings.get("shortcode", "")) if account else ""
    return {
        "mpesa": MPESA in methods,
        "stripe": STRIPE in methods,
        "oxxo": STRIPE in methods and lender.currency == "MXN",
        "paybill": paybill,
        "demo": not methods and settings.PAYMENTS_FAKE_CHECKOUT,
    }


@require_POST
@customer_required
def pay(request: HttpRequest, lender: Lender, customer: Customer, reference: str) -> HttpResponse:
    loan = _own_loan(lender, customer, reference)
    overview = loan_overview(loan=loan)
    amount = overview.pay_amount
    if overview.loan.status != "active" or amount.amount <= 0:
        _flash_set(request, _("There is nothing to pay on this loan."))
        return redirect("customers:home", lender_slug=lender.slug)
    back = request.build_absolute_uri(
        reverse("customers:home", kwargs={"lender_slug": lender.slug})
    )
    provider = request.POST.get("provider", "")
    if provider in providers_enabled(lender_id=lender.pk):
        return _pay_through(request, lender, customer, loan, provider, back)
    try:
        url = checkout_url(
            checkout=Checkout(
                lender_slug=lender.slug,
                lender_name=lender.name,
                loan_reference=reference,
                amount=amount,
                return_url=back,
            )
        )
    except CheckoutUnavailable as exc:
        raise Http404 from exc
    return redirect(url)


def _pay_through(
    request: HttpRequest,
    lender: Lender,
    customer: Customer,
    loan: Loan,
    provider: str,
    back: str,
) -> HttpResponse:
    """Start a payment with ``provider``: a prompt on the M-Pesa number given (the page
    then shows it waiting), or the provider's checkout page to go to."""
    home = redirect("customers:home", lender_slug=lender.slug)
    phone = ""
    if provider == MPESA:
        form = forms.MpesaPayForm(request.POST)
        if not form.is_valid():
            _flash_set(request, _("Give the M-Pesa number to ask for the payment."), PROBLEM)
            return home
        try:
            phone = phone_to_e164(phone=form.cleaned_data["phone"], country=lender.country)
        except DomainError as exc:
            _flash_set(request, exc.message, PROBLEM)
            return home
    try:
        attempt = payment_attempt_start(
            loan_id=loan.pk,
            lender_id=lender.pk,
            provider=provider,
            actor=_actor(request, customer.pk),
            phone=phone,
            return_url=back,
        )
    except DomainError as exc:
        _flash_set(request, exc.message, PROBLEM)
        return home
    if attempt.redirect_url:
        return redirect(attempt.redirect_url)
    return home


def _pause_action(
    request: HttpRequest,
    lender: Lender,
    customer: Customer,
    reference: str,
    form_class: type,
    act: Callable[..., object],
    done: str,
) -> HttpResponse:
    loan_id = _own_loan(lender, customer, reference).pk
    form = form_class(request.POST)
    if form.is_valid():
        try:
            act(
                loan_id=loan_id,
                lender_id=lender.pk,
                actor=_actor(request, customer.pk),
                **form.cleaned_data,
            )
        except DomainError as exc:
            _flash_set(request, exc.message, PROBLEM)
        else:
            _flash_set(request, done, SUCCESS)
    else:
        errors = " ".join(str(e) for errors in form.errors.values() for e in errors)
        _flash_set(request, errors, PROBLEM)
    return redirect("customers:home", lender_slug=lender.slug)


@require_POST
@customer_required
def promise(
    request: HttpRequest, lender: Lender, customer: Customer, reference: str
) -> HttpResponse:
    def act(**kwargs: Any) -> object:
        return loan_promise_record(
            reason=_("Promise made by the customer on their page."), **kwargs
        )

    return _pause_action(
        request,
        lender,
        customer,
        reference,
        forms.PromiseForm,
        act,
        _("Thank you. Your promise is recorded."),
    )


@require_POST
@customer_required
def hardship(
    request: HttpRequest, lender: Lender, customer: Customer, reference: str
) -> HttpResponse:
    return _pause_action(
        request,
        lender,
        customer,
        reference,
        forms.HardshipForm,
        loan_hardship_request,
        _("Your request is sent. The lender will answer soon."),
    )


@require_GET
@customer_required
def consent_download(
    request: HttpRequest, lender: Lender, customer: Customer, reference: str
) -> HttpResponse:
    """The terms the customer agreed to, exactly as recorded, with how and when."""
    loan_id = _own_loan(lender, customer, reference).pk
    record = consent_record_for_loan(loan_id=loan_id)
    if record is None:
        raise Http404
    body = "\n".join(
        [
            _("Consent to the terms of loan %(ref)s with %(lender)s")
            % {"ref": reference, "lender": lender.name},
            _("Recorded: %(when)s, by %(method)s (code check: %(check)s)")
            % {
                "when": record.created_at.isoformat(timespec="seconds"),
                "method": record.method,
                "check": record.code_check,
            },
            _("Text version %(version)s, SHA-256 %(hash)s")
            % {"version": record.text_version, "hash": record.text_sha256},
            "",
            record.text,
            "",
        ]
    )
    return _attachment(body, f"consent-{reference}.txt")


@require_GET
@customer_required
def receipt_download(
    request: HttpRequest, lender: Lender, customer: Customer, reference: str, payment_id: int
) -> HttpResponse:
    """A receipt for one of the customer's payments on this loan."""
    loan_id = _own_loan(lender, customer, reference).pk
    payment = payment_for_loan(loan_id=loan_id, payment_id=payment_id)
    if payment is None:
        raise Http404
    body = "\n".join(
        [
            _("Receipt from %(lender)s") % {"lender": lender.name},
            _("Loan: %(ref)s") % {"ref": reference},
            _("Customer: %(name)s") % {"name": customer.full_name},
            _("Received: %(when)s") % {"when": payment.received_at.isoformat(timespec="seconds")},
            _("Amount: %(amount)s") % {"amount": money_text(payment.amount, payment.currency)},
            _("Reference: %(ref)s") % {"ref": payment.receipt_ref or payment.provider_ref},
            "",
        ]
    )
    return _attachment(body, f"receipt-{reference}-{payment.pk}.txt")


def _attachment(body: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
