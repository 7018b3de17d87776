from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError


class OtpTokenInvalid(DomainError):
    code = "otp_token_invalid"
    default_message = _("That code is not valid. Check the time on your phone and try again.")


class OtpAlreadyConfigured(DomainError):
    code, http_status = "otp_already_configured", 409
    default_message = _("Two-factor login is already set up for this account.")


class OperatorSelfEnrolmentRefused(DomainError):
    code, http_status = "operator_self_enrolment_refused", 403
    default_message = _(
        "Platform operators do not set up two-factor login themselves: another operator "
        "provisions it with `manage.py provision_totp`."
    )
