from django.utils.translation import gettext_lazy as _

from apps.core.errors import DomainError, NotFound


class LenderNotFound(NotFound):
    code = "lender_not_found"
    default_message = _("No such lender.")


class LenderSlugTaken(DomainError):
    code, http_status = "lender_slug_taken", 409
    default_message = _("Another lender already uses this slug.")


class UserAlreadyMember(DomainError):
    code, http_status = "user_already_member", 409
    default_message = _("This user already belongs to a lender.")


class RestrictionPolicyNotActive(DomainError):
    code, http_status = "restriction_policy_not_active", 409
    default_message = _(
        "This restriction policy was replaced; add the new version to the active policy."
    )


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    default_message = _("No such API key.")
