from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class Customer(BaseModel):
    """A lender's customer. Identity is unique per lender by national id."""

    lender_path: ClassVar[str] = "lender"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="customers")
    full_name = models.CharField(_("full name"), max_length=200)
    phone = models.CharField(_("phone"), max_length=20, help_text=_("E.164, e.g. +254712345678"))
    national_id = models.CharField(_("national id"), max_length=40)
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    locale = models.CharField(
        _("language"), max_length=10, choices=settings.LANGUAGES, default="en"
    )

    class Meta:
        ordering = ("lender", "full_name")
        constraints = [
            models.UniqueConstraint(
                fields=["lender", "national_id"], name="customer_national_id_unique_per_lender"
            ),
            models.CheckConstraint(
                condition=models.Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"), name="customer_phone_e164"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name
