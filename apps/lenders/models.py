from typing import ClassVar
from zoneinfo import available_timezones

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.core.money import ISO_4217_CODES


def validate_country(value: str) -> None:
    # phonenumbers knows every ISO 3166-1 region that has a telephone plan,
    # which is every country we can lend in (we reach customers by phone).
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(
            _("%(value)s is not an ISO 3166-1 country code."), params={"value": value}
        )


def validate_currency(value: str) -> None:
    if value not in ISO_4217_CODES:
        raise ValidationError(
            _("%(value)s is not an ISO 4217 currency code."), params={"value": value}
        )


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(_("%(value)s is not an IANA time zone."), params={"value": value})


class Lender(BaseModel):
    """A lending business: its country, currency, timezone and language."""

    lender_path: ClassVar[str] = "pk"

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    country = models.CharField(
        _("country"),
        max_length=2,
        validators=[RegexValidator(r"^[A-Z]{2}$"), validate_country],
        help_text=_("ISO 3166-1 alpha-2, e.g. KE, PH, MX."),
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        validators=[RegexValidator(r"^[A-Z]{3}$"), validate_currency],
        help_text=_("ISO 4217, e.g. KES, PHP, MXN."),
    )
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        validators=[validate_timezone],
        help_text=_("IANA, e.g. Africa/Nairobi."),
    )
    locale = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"), name="lender_country_iso"
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="lender_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(BaseModel):
    """A back-office user's place at one lender, with their role."""

    lender_path: ClassVar[str] = "lender"

    class Role(models.TextChoices):
        AGENT = "agent", _("Agent")
        SUPERVISOR = "supervisor", _("Supervisor")
        LENDER_ADMIN = "lender_admin", _("Lender admin")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    lender = models.ForeignKey(Lender, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.AGENT)

    class Meta:
        ordering = ("lender", "user")

    def __str__(self) -> str:
        return f"{self.user} @ {self.lender} ({self.get_role_display()})"
