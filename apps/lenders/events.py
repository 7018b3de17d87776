from enum import StrEnum


class LendersAction(StrEnum):
    LENDER_CREATED = "lenders.lender.created"
    MEMBERSHIP_CREATED = "lenders.membership.created"
