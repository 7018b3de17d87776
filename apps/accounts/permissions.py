from typing import Any

from rest_framework.permissions import BasePermission


class IsVerified(BasePermission):
    """DRF's default: an authenticated user whose session passed the second factor.

    APIs used by phones or payment providers authenticate differently and set
    their own permission classes.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user_is_verified(user))


def user_is_verified(user: Any) -> bool:
    # OTPMiddleware gives request users is_verified(); a user without it never passed a factor.
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified is not None and is_verified())
