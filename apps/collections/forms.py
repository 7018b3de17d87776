from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _


class ManualPaymentForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"), max_digits=18, decimal_places=3, min_value=Decimal("0.001")
    )
    receipt_ref = forms.CharField(label=_("Receipt reference"), max_length=100, required=False)
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
        help_text=_("Why this payment is entered by hand (required, kept in the audit trail)."),
    )  # fmt: skip
    # Generated when the form is shown, so a double submit records one payment.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
