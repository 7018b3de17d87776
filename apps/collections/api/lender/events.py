"""The lender's events feed: its public events after a cursor, the payloads its webhooks carry.

The feed reads the lender's audit chain through its public projection
(``apps.audit.public``), oldest first: a lender's system that missed webhooks, or takes
none, walks it with ``next`` and never sees an event twice or out of order. ``next`` is
always given: an empty page means "nothing newer yet, ask again from there later".
tests/collections/test_api_lender_events.py.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from apps.audit.public import PUBLIC_TYPES
from apps.audit.selectors import public_event_list
from apps.collections.api.lender.base import READ_ERRORS
from apps.core.api.pagination import CursorPagination, page_of
from apps.core.api.schema import error_responses
from apps.lenders.api.auth import LenderApiMixin, lender_id_of
from apps.lenders.models import ApiKey

_CURSOR_PREFIX = "e:"


def cursor_encode(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode()


def cursor_decode(cursor: str) -> int:
    """The chain position of an opaque cursor; an unknown one is a 404, as for the other
    lists (DRF's cursor pagination)."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        raise exceptions.NotFound(CursorPagination.invalid_cursor_message) from None
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 18:
        raise exceptions.NotFound(CursorPagination.invalid_cursor_message)
    return int(number)


# one public event, exactly the body a webhook delivery of it carries (built with type():
# a field named ``data`` would shadow ``Serializer.data`` in a class statement's typing)
PublicEventOutput: type[serializers.Serializer[dict[str, Any]]] = type(
    "PublicEventOutput",
    (serializers.Serializer,),
    {
        "__module__": __name__,
        "id": serializers.CharField(help_text="`evt_<n>`: the `webhook-id` of its deliveries."),
        "type": serializers.ChoiceField(choices=PUBLIC_TYPES),
        "timestamp": serializers.CharField(help_text="When it happened, UTC, ISO 8601."),
        "data": serializers.DictField(
            help_text="`loan_id`, `device_id` where it is about a phone, and the few fields "
            "of its type (README, Webhooks)."
        ),
    },
)


class EventListApi(LenderApiMixin, APIView):
    """The lender's public events after ``cursor``, oldest first (README, "Webhooks")."""

    required_scopes = {ApiKey.Scope.LOANS_READ.value}

    class FilterSerializer(serializers.Serializer[dict[str, Any]]):
        type = serializers.ListField(
            child=serializers.ChoiceField(choices=PUBLIC_TYPES),
            required=False,
            max_length=len(PUBLIC_TYPES),
            help_text="Only these types (repeat the parameter for several).",
        )
        cursor = serializers.CharField(required=False, max_length=100)
        limit = serializers.IntegerField(
            min_value=1, max_value=CursorPagination.max_page_size, default=50
        )

    @extend_schema(
        operation_id="lender_events_list",
        parameters=[
            OpenApiParameter(
                "type",
                str,
                many=True,
                enum=list(PUBLIC_TYPES),
                description="Only these types (repeat the parameter for several).",
            ),
            OpenApiParameter(
                "cursor",
                str,
                description="From `next` of the page before (none: from the first event); "
                "an unknown one is a 404.",
            ),
            OpenApiParameter(
                "limit", int, description="Events per page: 50 unless given, at most 200."
            ),
        ],
        responses={200: page_of(PublicEventOutput), **error_responses(*READ_ERRORS)},
        description="Oldest first, the same events and bodies the webhooks carry. `next` is "
        "always given: an empty page means nothing newer yet; ask again from it later.",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = filters.validated_data
        after = cursor_decode(values["cursor"]) if "cursor" in values else 0
        page = public_event_list(
            lender_id=lender_id_of(request),
            after=after,
            limit=values["limit"],
            types=values.get("type") or None,
        )
        url = request.build_absolute_uri()
        return Response(
            {
                "next": replace_query_param(url, "cursor", cursor_encode(page.cursor)),
                "previous": None,
                "results": [event.payload for event in page.events],
            }
        )
