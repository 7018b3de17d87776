from typing import ClassVar

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who logs in: platform operator, lender back-office agent or clerk.

    Back-office users reach their lender through ``membership`` (lenders app).
    """

    lender_path: ClassVar[str] = "membership__lender"

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
