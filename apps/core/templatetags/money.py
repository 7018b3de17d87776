"""``{{ amount|money }}``: a Money as the active language writes it (``KES 1,091.66``)."""

from decimal import Decimal

from django import template

from apps.core.money import Money, money_format

register = template.Library()


@register.filter
def money(value: Money | Decimal, currency: str | None = None) -> str:
    """A Money, or an amount in ``currency``: ``{{ payment.amount|money:payment.currency }}``."""
    if isinstance(value, Money):
        return money_format(value.amount, value.currency)
    return money_format(value, currency or "")
