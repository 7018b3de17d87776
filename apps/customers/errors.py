from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from apps.core.errors import DomainError


class PhoneInvalid(DomainError):
    code = "phone_invalid"
    default_message = _("This is not a valid mobile number for the lender's country.")


class ConsentCodeInvalid(DomainError):
    code = "consent_code_invalid"
    default_message = _("That code is not right. Check the SMS and try again.")


class ConsentCodeExpired(DomainError):
    code, http_status = "consent_code_expired", 410
    default_message = _("That code has expired or was tried too often. Send a new code.")


class ConsentCodeNotSent(DomainError):
    code, http_status = "consent_code_not_sent", 503
    default_message = _("The SMS with the code could not be sent. Try again in a minute.")


class ConsentTextChanged(DomainError):
    code, http_status = "consent_text_changed", 409
    default_message = _("The terms changed after the code was sent. Send a new code.")


class NationalIdInvalid(DomainError):
    code = "national_id_invalid"
    default_message = _("This national id number is not valid for the lender's country.")


class CustomerDetailsMismatch(DomainError):
    code, http_status = "customer_details_mismatch", 409
    default_message = _(
        "A customer with this national id is registered with another phone number. "
        "Check the number, or ask the lender to update it."
    )


class PhoneInUse(DomainError):
    """The number is another customer's at this lender (one customer per number: the login
    finds the customer by it)."""

    code, http_status = "phone_in_use", 409
    default_message = _("This number belongs to another customer: check it.")

    def __init__(self, *, name_masked: str) -> None:
        super().__init__(
            _("This number belongs to another customer (%(name)s): check it.")
            % {"name": name_masked}
        )


class LoginCodeInvalid(DomainError):
    code = "login_code_invalid"
    default_message = _("That code is not right. Check the SMS and try again.")


class LoginCodeExpired(DomainError):
    code, http_status = "login_code_expired", 410
    default_message = _("That code has expired or was already used. Ask for a new code.")


class LoginLimitReached(DomainError):
    """A login limit of ``limit`` tries in ``window`` minutes is reached: the message says
    which one and in how many minutes its window ends (``minutes``)."""

    code, http_status = "login_limit_reached", 429
    default_message = _("Too many login tries. Try again later.")
    text: ClassVar[Any] = default_message

    def __init__(self, *, limit: int, window: int, minutes: int) -> None:
        message = self.text % {"limit": limit, "window": window, "minutes": minutes}
        super().__init__(message, minutes=minutes)


class LoginLocked(LoginLimitReached):
    code = "login_locked"
    text = ngettext_lazy(
        "Too many wrong codes for this number: %(limit)s in %(window)s minutes. "
        "Try again in %(minutes)s minute.",
        "Too many wrong codes for this number: %(limit)s in %(window)s minutes. "
        "Try again in %(minutes)s minutes.",
        "minutes",
    )


class LoginTooManyFromAddress(LoginLimitReached):
    code = "login_address_limit"
    text = ngettext_lazy(
        "Too many login tries from this internet address: %(limit)s in %(window)s minutes. "
        "Try again in %(minutes)s minute.",
        "Too many login tries from this internet address: %(limit)s in %(window)s minutes. "
        "Try again in %(minutes)s minutes.",
        "minutes",
    )


class LoginTooManyForNumber(LoginLimitReached):
    code = "login_number_limit"
    text = ngettext_lazy(
        "Too many login tries for this number: %(limit)s in %(window)s minutes. "
        "Try again in %(minutes)s minute.",
        "Too many login tries for this number: %(limit)s in %(window)s minutes. "
        "Try again in %(minutes)s minutes.",
        "minutes",
    )


class AccountReadingConsentNotFound(DomainError):
    code, http_status = "account_reading_consent_not_found", 404
    default_message = _("There is no consent to account reading in force to withdraw.")


class ConsentHashMismatch(DomainError):
    code, http_status = "consent_hash_mismatch", 400
    default_message = _("The consent text's SHA-256 is not the hash sent with it.")
