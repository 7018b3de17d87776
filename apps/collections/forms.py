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


class PauseForm(forms.Form):
    until = forms.DateField(
        label=_("Until"), widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The last day of the pause, included."),
    )  # fmt: skip
    amount = forms.DecimalField(
        label=_("Amount promised"), max_digits=18, decimal_places=3, min_value=Decimal("0.001"),
        required=False,
    )  # fmt: skip
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
        help_text=_("Required; kept in the audit trail."),
    )  # fmt: skip


class DecisionForm(forms.Form):
    approve = forms.TypedChoiceField(
        label=_("Decision"), choices=[("yes", _("Approve")), ("no", _("Reject"))],
        coerce=lambda value: value == "yes", widget=forms.RadioSelect,
    )  # fmt: skip
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
        help_text=_("Required; kept in the audit trail."),
    )  # fmt: skip


class HardshipPauseForm(PauseForm):
    """Until and reason: a supervisor's hardship pause, active at once."""

    amount = None
