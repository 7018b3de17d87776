from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError


class PhoneInvalid(DomainError):
    code = "phone_invalid"
    default_message = _("This is not a valid mobile number for the lender's country.")
