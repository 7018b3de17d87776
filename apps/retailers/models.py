import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from apps.lenders.models import validate_timezone


class Retailer(BaseModel):
    """A phone retailer: one or more shops that sell on installments for lenders."""

    lender_path: ClassVar[str] = "shops__lenders"

    name = models.CharField(_("name"), max_length=200)

    def __str__(self) -> str:
        return self.name


class Shop(BaseModel):
    """A shop counter. Lender agents see the shops that sell their loans."""

    lender_path: ClassVar[str] = "lenders"

    retailer = models.ForeignKey(Retailer, on_delete=models.PROTECT, related_name="shops")
    name = models.CharField(_("name"), max_length=200)
    address = models.TextField(_("address"))
    timezone = models.CharField(_("time zone"), max_length=64, validators=[validate_timezone])
    lenders = models.ManyToManyField(
        "lenders.Lender", related_name="shops", verbose_name=_("sells for")
    )
    support_phone = models.CharField(_("support phone"), max_length=20, blank=True)

    def __str__(self) -> str:
        return f"{self.retailer} - {self.name}"


class Clerk(BaseModel):
    """A person at a shop counter: logs in to the point-of-sale pages only, never the admin."""

    lender_path: ClassVar[str] = "shop__lenders"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="clerk"
    )
    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="clerks")

    def __str__(self) -> str:
        return f"{self.user} @ {self.shop}"


class Sale(BaseModel):
    """A sale in progress at the counter, one step at a time; survives a page reload.

    Each step stores what it validated; the last one signs the loan.
    """

    lender_path: ClassVar[str] = "lender"

    class Step(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        PHONE = "phone", _("Phone")
        PLAN = "plan", _("Plan")
        CONSENT = "consent", _("Consent")
        SIGN = "sign", _("Sign")
        PROVISION = "provision", _("Provision")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="+")
    shop = models.ForeignKey(Shop, on_delete=models.PROTECT, related_name="sales")
    clerk = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=10, choices=Step.choices, default=Step.CUSTOMER)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imei = models.CharField(max_length=15, blank=True)
    brand = models.CharField(max_length=60, blank=True)
    model_name = models.CharField(max_length=80, blank=True)
    price_amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, null=True, blank=True
    )
    product = models.ForeignKey(
        "lenders.LoanProduct", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    down_payment_amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, null=True, blank=True
    )
    consent_challenge = models.ForeignKey(
        "customers.ConsentChallenge",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    consent = models.ForeignKey(
        "customers.ConsentRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    loan = models.OneToOneField(
        "collections.Loan", null=True, blank=True, on_delete=models.PROTECT, related_name="sale"
    )
    device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ("-created_at",)
