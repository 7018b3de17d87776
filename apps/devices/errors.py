from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError, NotFound


class ImeiInvalid(DomainError):
    code = "imei_invalid"
    default_message = _("This is not a valid IMEI: 15 digits with a correct check digit.")


class ImeiInUse(DomainError):
    code, http_status = "imei_in_use", 409
    default_message = _("This phone is already the collateral of a loan that is not closed.")


class DeviceNotFound(NotFound):
    code = "device_not_found"
    default_message = _("No such device.")


class DeviceNotPending(DomainError):
    code, http_status = "device_not_pending", 409
    default_message = _("This phone is already enrolled or released; it needs no enrollment code.")


class EnrollmentRefused(DomainError):
    http_status = 400


class EnrollmentTokenInvalid(EnrollmentRefused):
    code, http_status = "enrollment_token_invalid", 401
    default_message = _("This enrollment code is not valid. Ask the shop for a fresh code.")


class EnrollmentTokenUsed(EnrollmentRefused):
    code, http_status = "enrollment_token_used", 409
    default_message = _("This enrollment code was already used. Ask the shop for a fresh code.")


class EnrollmentTokenExpired(EnrollmentRefused):
    code, http_status = "enrollment_token_expired", 410
    default_message = _("This enrollment code has expired. Ask the shop for a fresh code.")


class EnrollmentImeiMismatch(EnrollmentRefused):
    code, http_status = "imei_mismatch", 409
    default_message = _("This is not the phone that was sold with this code.")


class DeviceReleased(DomainError):
    code, http_status = "device_released", 410
    default_message = _("This phone was released: it can never be restricted again.")


class AckVersionUnknown(DomainError):
    code, http_status = "ack_version_unknown", 409
    default_message = _("That state version was never issued to this phone.")


class OfflineCodeUnknown(NotFound):
    code = "offline_code_unknown"
    default_message = _("This phone has no unlock code to send.")


class OfflineCodeStale(DomainError):
    code, http_status = "offline_code_stale", 409
    default_message = _(
        "The phone's newest unlock code no longer matches its state (the account changed "
        "since). The next payment brings a new code."
    )
