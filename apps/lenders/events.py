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
    API_KEY_CREATED = "lenders.api_key.created"
    API_KEY_REVOKED = "lenders.api_key.revoked"
