from enum import StrEnum


class CustomersAction(StrEnum):
    CUSTOMER_CREATED = "customers.customer.created"
