from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError


class SaleAlreadySigned(DomainError):
    code, http_status = "sale_already_signed", 409
    default_message = _("This sale is signed; start a new sale to change anything.")


class SalePriceInvalid(DomainError):
    code = "sale_price_invalid"
    default_message = _("Enter the cash price as a positive amount in the lender's currency.")


class SaleStepMissing(DomainError):
    code, http_status = "sale_step_missing", 409
    default_message = _("An earlier step of this sale is not done yet.")
