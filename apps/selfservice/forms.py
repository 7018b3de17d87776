from django import forms
from django.utils.translation import gettext_lazy as _


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label=_("Your mobile number"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=_("The 6-digit code we sent you"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": _("The code has 6 digits.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class PromiseForm(forms.Form):
    until = forms.DateField(
        label=_("I will pay what is late by"), widget=forms.DateInput(attrs={"type": "date"})
    )


class HardshipForm(forms.Form):
    until = forms.DateField(label=_("Pause until"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(
        label=_("What happened"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )


class MpesaPayForm(forms.Form):
    phone = forms.CharField(
        label=_("M-Pesa number to ask for the payment"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
