"""The demo payment provider's checkout page (``PAYMENTS_FAKE_CHECKOUT`` only)."""

from __future__ import annotations

import requests
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from apps.integrations.payments.checkout import DEMO_PROVIDER, checkout_read, demo_provider_pay


@require_http_methods(["GET", "POST"])
def checkout_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        checkout = checkout_read(token)
    except signing.BadSignature as exc:
        raise Http404 from exc
    if not url_has_allowed_host_and_scheme(checkout.return_url, allowed_hosts={request.get_host()}):
        raise Http404
    error = ""
    if request.method == "POST":
        webhook = request.build_absolute_uri(reverse("payments-api:webhook", args=[DEMO_PROVIDER]))
        try:
            answer = demo_provider_pay(checkout=checkout, webhook_url=webhook)
        except requests.RequestException:
            error = "The merchant could not be reached; nothing was paid. Try again."
        else:
            if answer.status_code == 200:
                return redirect(f"{checkout.return_url}?paid=1")
            error = f"The merchant refused the payment ({answer.status_code})."
    return render(request, "payments/checkout.html", {"checkout": checkout, "error": error})
