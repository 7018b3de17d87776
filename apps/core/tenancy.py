"""How a row reaches its lender: the one rule every scoped query uses.

Every lender-owned model declares ``lender_path``, the ORM path from the model
to its lender (``"lender"`` for most tables, ``"pk"`` for the Lender itself).
``scope_to_lender`` is the only filter that applies it; the admin base class and
the DRF permission in ``apps.lenders.tenancy`` both go through it.
"""

from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import models

M = TypeVar("M", bound=models.Model)


def lender_path_of(model: type[models.Model]) -> str | None:
    return getattr(model, "lender_path", None)


def is_lender_owned(model: type[models.Model]) -> bool:
    return lender_path_of(model) is not None


def scope_to_lender(queryset: "models.QuerySet[M]", lender_id: int | None) -> "models.QuerySet[M]":
    """Rows of ``queryset`` that belong to ``lender_id``; nothing when it is None."""
    path = lender_path_of(queryset.model)
    if path is None:
        raise ImproperlyConfigured(f"{queryset.model.__name__} does not declare lender_path")
    if lender_id is None:
        return queryset.none()
    return (
        queryset.filter(**{path: lender_id}).distinct()
        if "__" in path
        else queryset.filter(**{path: lender_id})
    )


def lender_id_of(obj: Any) -> int | None:
    """The lender an instance belongs to, or None for platform-level rows."""
    path = lender_path_of(type(obj))
    if path is None:
        return None
    if path == "pk":
        pk: int = obj.pk
        return pk
    if "__" not in path:
        return getattr(obj, f"{path}_id", None)
    lookup = f"{path}__pk" if not path.endswith("_id") else path
    lender_id: int | None = (
        type(obj)._default_manager.filter(pk=obj.pk).values_list(lookup, flat=True).first()
    )
    return lender_id


def belongs_to_lender(obj: Any, lender_id: int) -> bool:
    """Whether ``obj`` is ``lender_id``'s: by attribute for a direct foreign key, else by query
    (a shop sells for several lenders, so it belongs to each of them)."""
    model = type(obj)
    path = lender_path_of(model)
    if path is None:
        return False
    if path == "pk":
        return bool(obj.pk == lender_id)
    field = model._meta.get_field(path.split("__")[0])
    if "__" not in path and field.many_to_one:
        return bool(getattr(obj, f"{path}_id", None) == lender_id)
    return scope_to_lender(model._default_manager.filter(pk=obj.pk), lender_id).exists()
