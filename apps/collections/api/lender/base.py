"""What the lender API's views share: a paginated list over a selector's queryset."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.pagination import CursorPagination
from apps.lenders.api.auth import api_key_of
from apps.lenders.selectors import lender_local_date

READ_ERRORS = (400, 401, 403, 404, 413, 429)  # 404: an unknown cursor
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429)


def lender_today(request: Request) -> Any:
    """The key's lender's date now: days overdue count in its timezone."""
    return lender_local_date(lender=api_key_of(request).lender)


def paginated(
    request: Request,
    view: Any,
    rows: QuerySet[Any],
    serializer: type[serializers.Serializer[Any]],
    **context: Any,
) -> Response:
    paginator = CursorPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    data = serializer(page, many=True, context=context).data
    return paginator.get_paginated_response(data)
