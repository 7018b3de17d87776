"""Amounts in the back office in their currency's minor unit (``15,000.00``), never as stored.

Money is stored with ``MONEY_DECIMAL_PLACES`` places (``15000.000``), which Django's admin
shows as is. ``MoneyAdminMixin``, which every lender-scoped admin and inline inherits, shows
each such field of its model, wherever it is displayed (a list column, a read-only field,
an inline's cell), through ``amount_format`` in the row's currency: its own ``currency``, or
its loan's, or its lender's. Editable inputs keep the stored value.
tests/collections/test_admin_money.py
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from types import MethodType, SimpleNamespace
from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from apps.core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, amount_format

SHOWN_SUFFIX = "_shown"


def is_money_field(field: Any) -> bool:
    return (
        isinstance(field, models.DecimalField)
        and field.max_digits == MONEY_MAX_DIGITS
        and field.decimal_places == MONEY_DECIMAL_PLACES
    )


def row_currency(obj: Any) -> str | None:
    """The currency a row's amounts are in: its own, else its loan's, else its lender's."""
    for path in ("currency", "loan", "lender"):
        value = getattr(obj, path, None)
        if isinstance(value, str):
            return value or None
        if value is not None and isinstance(getattr(value, "currency", None), str):
            return str(value.currency)
    return None


def _shown(field: Any) -> Callable[[Any], str | None]:
    @admin.display(description=field.verbose_name, ordering=field.name)
    def show(obj: Any) -> str | None:
        value = getattr(obj, field.attname)
        currency = row_currency(obj)
        if value is None:
            return None
        if currency is None:  # a row with no currency to read: as stored
            return str(value)
        return amount_format(Decimal(value), currency)

    return show


class MoneyAdminMixin:
    """Shows the model's money fields in the row's currency's minor unit (module docstring).

    Its hooks wrap the admin's own ``get_list_display``, ``get_readonly_fields`` and
    ``get_fieldsets`` when it is made, so an admin that overrides them is covered too."""

    model: type[models.Model]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._money_fields = {
            field.name for field in self.model._meta.get_fields() if is_money_field(field)
        }
        for name in self._money_fields:
            setattr(self, name + SHOWN_SUFFIX, _shown(self.model._meta.get_field(name)))
        target: Any = self  # a mixin: the admin it joins has the hooks
        own = SimpleNamespace(
            list_display=getattr(target, "get_list_display", None),  # an inline has none
            readonly_fields=target.get_readonly_fields,
            fieldsets=target.get_fieldsets,
            exclude=target.get_exclude,
        )

        def list_display(_: Any, request: HttpRequest) -> list[Any]:
            return self._shown_names(own.list_display(request))

        def readonly_fields(_: Any, request: HttpRequest, obj: Any = None) -> list[Any]:
            return self._shown_names(own.readonly_fields(request, obj))

        def exclude(_: Any, request: HttpRequest, obj: Any = None) -> Any:
            """The read-only money fields out of the form, as Django leaves out read-only
            fields: their displays stand in their place."""
            excluded = own.exclude(request, obj)
            readonly = own.readonly_fields(request, obj)
            shown = [name for name in readonly if name in self._money_fields]
            return [*(excluded or ()), *shown] if shown else excluded

        def fieldsets(_: Any, request: HttpRequest, obj: Any = None) -> list[Any]:
            """A view-only page shows every field read-only; else only the read-only fields
            are displays, and the editable ones stay inputs."""
            view_only = obj is not None and not target.has_change_permission(request, obj)
            readonly = None if view_only else own.readonly_fields(request, obj)
            return [
                (title, {**options, "fields": self._shown_lines(options["fields"], readonly)})
                for title, options in own.fieldsets(request, obj)
            ]

        # bound, as Django's checks expect of an admin's hooks
        if own.list_display is not None:
            target.get_list_display = MethodType(list_display, target)
        target.get_readonly_fields = MethodType(readonly_fields, target)
        target.get_exclude = MethodType(exclude, target)
        target.get_fieldsets = MethodType(fieldsets, target)

    def _shown_names(
        self, names: Iterable[Any], readonly: Iterable[Any] | None = None
    ) -> list[Any]:
        """``names`` with each money field (each read-only one, if ``readonly`` is given)
        replaced by the name of its display."""
        only = None if readonly is None else set(readonly)
        return [
            name + SHOWN_SUFFIX
            if isinstance(name, str)
            and name in self._money_fields
            and (only is None or name in only)
            else name
            for name in names
        ]

    def _shown_lines(self, fields: Iterable[Any], readonly: Iterable[Any] | None) -> list[Any]:
        return [
            tuple(self._shown_names(line, readonly))
            if isinstance(line, list | tuple)
            else self._shown_names([line], readonly)[0]
            for line in fields
        ]
