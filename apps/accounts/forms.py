from django import forms
from django.utils.translation import gettext_lazy as _


class OtpTokenForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code"),
        min_length=6,
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
        help_text=_("The 6-digit code from your authenticator app, or one of your backup codes."),
    )

    def clean_otp_token(self) -> str:
        return "".join(self.cleaned_data["otp_token"].split())
