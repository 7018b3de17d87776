"""The domain error tree. One DRF handler maps these to HTTP (core.api)."""

from typing import ClassVar

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code: ClassVar[str] = "domain_error"
    http_status: ClassVar[int] = 400
    # lazy: translated when raised, into the language active then
    default_message: ClassVar[str | Promise] = _("The request could not be completed.")

    def __init__(self, message: str | Promise | None = None, **extra: object) -> None:
        self.message = str(message or self.default_message)
        self.extra = extra
        super().__init__(self.message)


class NotFound(DomainError):
    code, http_status = "not_found", 404
    default_message = _("Not found.")


class NotAllowed(DomainError):
    code, http_status = "not_allowed", 403
    default_message = _("You are not allowed to do this.")


class IdempotencyConflict(DomainError):
    code, http_status = "idempotency_conflict", 409
    default_message = _("This idempotency key was already used with different data.")


class BodyTooLarge(DomainError):
    code, http_status = "payload_too_large", 413
    default_message = _("The body is larger than this API accepts.")
