from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class StartForm(forms.Form):
    lender = forms.TypedChoiceField(label=_("Lender"), coerce=int)


class CustomerForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=200)
    phone = forms.CharField(
        label=_("Mobile number"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    national_id = forms.CharField(label=_("National ID"), max_length=40)
    date_of_birth = forms.DateField(
        label=_("Date of birth"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    # each language named in itself, as the customer reads it; none given: the lender's
    # for a new customer, unchanged for one found again
    locale = forms.ChoiceField(
        label=_("Customer's language"),
        choices=settings.LANGUAGES,
        required=False,
        help_text=_("The terms, the code's SMS and every later message are in this language."),
    )


class PhoneForm(forms.Form):
    imei = forms.CharField(
        label=_("IMEI"),
        max_length=20,
        help_text=_("Dial *#06# on the phone to see it."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    brand = forms.CharField(label=_("Brand"), max_length=60)
    model_name = forms.CharField(label=_("Model"), max_length=80)
    price = forms.DecimalField(
        label=_("Cash price"),
        max_digits=18,
        decimal_places=3,
        min_value=Decimal("0.001"),
        widget=forms.NumberInput(attrs={"inputmode": "decimal"}),
    )


class PlanForm(forms.Form):
    product = forms.TypedChoiceField(label=_("Plan"), coerce=int)
    down_payment = forms.DecimalField(
        label=_("Down payment"),
        max_digits=18,
        decimal_places=3,
        min_value=Decimal(0),
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, products: Iterable[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].choices = [(p.pk, str(p)) for p in products]


class ConsentCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the customer's SMS"),
        min_length=6,
        max_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )
