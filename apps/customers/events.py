from enum import StrEnum


class CustomersAction(StrEnum):
    CUSTOMER_CREATED = "customers.customer.created"
    CUSTOMER_PHONE_CHANGED = "customers.customer.phone_changed"
    CUSTOMER_LOCALE_CHANGED = "customers.customer.locale_changed"
    CONSENT_CODE_SENT = "customers.consent.code_sent"
    CONSENT_CODE_FAILED = "customers.consent.code_failed"
    CONSENT_RECORDED = "customers.consent.recorded"
    LOGIN_CODE_SENT = "customers.login.code_sent"
    LOGIN_CODE_FAILED = "customers.login.code_failed"
    LOGIN_SUCCEEDED = "customers.login.succeeded"
    LOGIN_LINK_MINTED = "customers.login.link_minted"
    LOGIN_CODE_WITHHELD = "customers.login.code_withheld"
    ACCOUNT_READING_GIVEN = "customers.account_reading.given"
    ACCOUNT_READING_REVOKED = "customers.account_reading.revoked"
    PLAID_ITEM_LINKED = "customers.plaid_item.linked"
