from enum import StrEnum


class RetailersAction(StrEnum):
    SHOP_CREATED = "retailers.shop.created"
    CLERK_CREATED = "retailers.clerk.created"
