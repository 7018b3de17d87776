from enum import StrEnum


class LendersAction(StrEnum):
    LENDER_CREATED = "lenders.lender.created"
    LENDER_SETTINGS_CHANGED = "lenders.lender.settings_changed"
    MEMBERSHIP_CREATED = "lenders.membership.created"
    LOAN_PRODUCT_CREATED = "lenders.loan_product.created"
    LOAN_PRODUCT_CHANGED = "lenders.loan_product.changed"
    RESTRICTION_POLICY_VERSION_CREATED = "lenders.restriction_policy.version_created"
    RESTRICTION_POLICY_DEACTIVATED = "lenders.restriction_policy.deactivated"
    MESSAGE_TEMPLATE_CHANGED = "lenders.message_template.changed"
