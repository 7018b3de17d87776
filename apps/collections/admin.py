"""Back office for loans and payments: read-only, corrections through services."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from apps.collections.forms import ManualPaymentForm
from apps.collections.models import Installment, Loan, Payment
from apps.collections.selectors import loan_days_overdue, loan_next_due, loan_outstanding
from apps.collections.services import payment_record
from apps.core.actor import Actor
from apps.core.errors import DomainError
from apps.core.money import Money
from apps.lenders.models import Membership
from apps.lenders.tenancy import (
    LenderScopedAdmin,
    ReadOnlyAdminMixin,
    ScopedReadOnlyInline,
)


class InstallmentInline(ScopedReadOnlyInline):
    model = Installment
    fields = ("sequence", "due_date", "principal_amount", "interest_amount", "fee_amount",
              "late_fee_amount", "principal_paid", "interest_paid", "fee_paid", "late_fee_paid", "paid_at")  # fmt: skip
    readonly_fields = fields
    ordering = ("sequence",)


class PaymentInline(ScopedReadOnlyInline):
    model = Payment
    fields = (
        "received_at",
        "amount",
        "currency",
        "channel",
        "provider",
        "provider_ref",
        "receipt_ref",
        "reason",
    )
    readonly_fields = fields
    ordering = ("received_at",)


@admin.register(Loan)
class LoanAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    payment_roles = frozenset(Membership.Role)
    list_display = (
        "reference",
        "customer",
        "status",
        "currency",
        "financed_amount",
        "signed_at",
        "lender",
    )
    list_filter = ("status", "product", "lender")
    search_fields = ("reference", "customer__full_name", "customer__phone", "customer__national_id")
    readonly_fields = ("summary",)
    inlines = (InstallmentInline, PaymentInline)
    change_form_template = "admin/collections/loan/change_form.html"

    @admin.display(description="Balance")
    def summary(self, loan: Loan) -> str:
        next_due = loan_next_due(loan=loan)
        due = (
            f"next due {next_due.due_date} ({next_due.amount.amount})"
            if next_due
            else "nothing due"
        )
        return (
            f"Outstanding {loan_outstanding(loan=loan).amount} {loan.currency}; {due}; "
            f"{loan_days_overdue(loan=loan)} days overdue"
        )

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.record_payment_view)
        return [path("<int:object_id>/record-payment/", view, name="collections_loan_record_payment"),
                *super().get_urls()]  # fmt: skip

    def record_payment_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Record a payment received outside the provider: amount, reason, receipt reference."""
        loan = self.get_object(request, str(object_id))
        if loan is None:
            raise Http404
        self.require_role(request, self.payment_roles, loan)
        form = ManualPaymentForm(
            request.POST or None, initial={"idempotency_key": uuid.uuid4().hex}
        )
        if request.method == "POST" and form.is_valid():
            try:
                outcome = payment_record(
                    loan_id=loan.pk, lender_id=loan.lender_id,
                    amount=Money(form.cleaned_data["amount"], loan.currency),
                    channel=Payment.Channel.MANUAL, provider="manual",
                    provider_ref=form.cleaned_data["idempotency_key"], received_at=timezone.now(),
                    reason=form.cleaned_data["reason"], receipt_ref=form.cleaned_data["receipt_ref"],
                    actor=Actor.agent(request.user, request),
                )  # fmt: skip
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                verb = "Recorded" if outcome.created else "Already recorded"
                self.message_user(
                    request, f"{verb}: {outcome.payment.amount} {loan.currency}.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:collections_loan_change", args=[loan.pk])
                )
        context = {**self.admin_site.each_context(request), "title": f"Record a payment for {loan.reference}",
                   "loan": loan, "form": form, "opts": self.model._meta}  # fmt: skip
        return TemplateResponse(request, "admin/collections/loan/record_payment.html", context)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, LenderScopedAdmin):
    list_display = (
        "received_at",
        "loan",
        "amount",
        "currency",
        "channel",
        "provider",
        "provider_ref",
    )
    list_filter = ("channel", "provider", "lender")
    search_fields = ("provider_ref", "receipt_ref", "loan__reference")
    date_hierarchy = "received_at"
