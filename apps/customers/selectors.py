from collections.abc import Iterable

from apps.customers.models import Customer


def customer_locales(*, customer_ids: Iterable[int]) -> dict[int, str]:
    """customer id -> the language the customer reads (for what the phone shows)."""
    return dict(Customer.objects.filter(pk__in=list(customer_ids)).values_list("pk", "locale"))
