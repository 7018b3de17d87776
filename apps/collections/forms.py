from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


class ManualPaymentForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"), max_digits=18, decimal_places=3, min_value=Decimal("0.001")
    )
    receipt_ref = forms.CharField(label=_("Receipt reference"), max_length=100, required=False)
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("Why this payment is entered by hand (required, kept in the audit trail)."),
    )
    # Generated when the form is shown, so a double submit records one payment.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)


class MpesaPromptForm(forms.Form):
    phone = forms.CharField(
        label=_("Customer's M-Pesa number"),
        max_length=20,
        help_text=_("The number on file; change it if the customer pays from another phone."),
    )


class PauseForm(forms.Form):
    until = forms.DateField(
        label=_("Until"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The last day of the pause, included."),
    )
    amount = forms.DecimalField(
        label=_("Amount promised"),
        max_digits=18,
        decimal_places=3,
        min_value=Decimal("0.001"),
        required=False,
    )
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("Required; kept in the audit trail."),
    )


class DecisionForm(forms.Form):
    approve = forms.TypedChoiceField(
        label=_("Decision"),
        choices=[("yes", _("Approve")), ("no", _("Reject"))],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("Required; kept in the audit trail."),
    )


class SupportPinForm(forms.Form):
    """The challenge the customer reads from the phone's lock screen, and why it is lifted."""

    challenge = forms.CharField(
        label=_("Challenge"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text=_("The 6 digits the phone's lock screen shows, as the customer reads them."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("Required; kept in the audit trail (for example the payment you checked)."),
    )


class HardshipPauseForm(PauseForm):
    """Until and reason: a supervisor's hardship pause, active at once."""

    amount = None


class SuspendForm(forms.Form):
    """Where to stop new restrictions (an operator picks a lender or a country; a lender's admin
    suspends their own lender), why, and whether to lower current ones to reminders."""

    lender = forms.ModelChoiceField(label=_("Lender"), queryset=None, required=False)
    country = forms.CharField(
        label=_("Country"),
        max_length=2,
        required=False,
        help_text=_("Two capital letters (KE, MX): every lender there. Leave empty for a lender."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("Required; kept in the audit trail (a regulator's order, an outage...)."),
    )
    lower_to_reminder = forms.BooleanField(
        label=_("Lower every current restriction to reminders now"), required=False
    )

    def __init__(
        self, *args: object, lenders: object = None, operator: bool = False, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # Form's own signature
        self.fields["lender"].queryset = lenders  # type: ignore[attr-defined]  # ModelChoiceField
        if not operator:
            del self.fields["country"]
            self.fields["lender"].required = True


class MessagesHandledForm(forms.Form):
    """The customer's messages an agent answered: those the page showed (their ids, so a
    message that came in while the agent read is not marked with them), and what was done."""

    ids = forms.CharField(widget=forms.HiddenInput, max_length=2000)
    reason = forms.CharField(
        label=_("What was done"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("How the customer was answered (required, kept in the audit trail)."),
    )

    def clean_ids(self) -> list[int]:
        parts = self.cleaned_data["ids"].split(",")
        if not all(part.isdigit() for part in parts):
            raise forms.ValidationError(_("Open the messages again."), code="ids")
        return [int(part) for part in parts]


class PortfolioPeriodForm(forms.Form):
    """The portfolio's period: roll rates from the month ends since ``start``; figures as of
    ``end`` (today at most)."""

    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        values = super().clean() or {}
        start, end = values.get("start"), values.get("end")
        if start and end and start > end:
            raise forms.ValidationError(_("The period ends before it starts."))
        return values
