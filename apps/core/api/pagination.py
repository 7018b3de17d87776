"""Cursor pagination for the APIs whose lists a caller's system walks (the lender API)."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import pagination, serializers


class CursorPagination(pagination.CursorPagination):
    """Newest first by id, ``limit`` per page (at most 200), an opaque ``cursor`` to go on:
    a page stays right while rows are added, unlike an offset."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200


def page_of(serializer: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[Any]]:
    """The schema of one page of ``serializer``'s rows under ``CursorPagination``."""
    name = serializer.__qualname__.replace(".", "").removesuffix("Serializer") + "Page"
    fields: dict[str, Any] = {
        "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
        "previous": serializers.URLField(allow_null=True, help_text="The page before, or null."),
        "results": serializer(many=True),
        "__qualname__": name,
        "__module__": serializer.__module__,
    }
    return type(name, (serializers.Serializer,), fields)


PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        str,
        description="From `next` or `previous` of the page before; an unknown one is a 404.",
    ),
    OpenApiParameter("limit", int, description="Rows per page: 50 unless given, at most 200."),
]
