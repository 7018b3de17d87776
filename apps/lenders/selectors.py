from apps.lenders.errors import LenderNotFound
from apps.lenders.models import Lender, Membership


def lender_get_by_slug(*, slug: str) -> Lender:
    lender = Lender.objects.filter(slug=slug).first()
    if lender is None:
        raise LenderNotFound(slug=slug)
    return lender


def membership_get_for_user(*, user_id: int) -> Membership | None:
    return Membership.objects.select_related("lender").filter(user_id=user_id).first()
