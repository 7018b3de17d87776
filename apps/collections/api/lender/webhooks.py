"""The lender's webhook endpoints and their delivery log, managed by its own systems.

The same services as the back office's pages (``apps.integrations.services.webhooks``): an
endpoint's signing secret is shown once, in the answer that creates or rotates it, and kept
only sealed; a repeat of that POST (same ``Idempotency-Key``) answers ``secret: null``.
Another lender's endpoint or delivery answers as one that does not exist (404).
tests/collections/test_api_lender_webhooks.py.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.public import PUBLIC_TYPES
from apps.collections.api.lender.base import READ_ERRORS, WRITE_ERRORS, paginated
from apps.core.api.pagination import PAGE_PARAMETERS, page_of
from apps.core.api.schema import error_responses
from apps.core.errors import NotFound
from apps.integrations.models import WebhookDelivery, WebhookEndpoint
from apps.integrations.selectors import (
    webhook_delivery_list,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from apps.integrations.services import (
    webhook_deliveries_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_update,
)
from apps.lenders.api.auth import LenderApiMixin, actor_of, lender_id_of
from apps.lenders.models import ApiKey

WEBHOOKS_MANAGE = {ApiKey.Scope.WEBHOOKS_MANAGE.value}


class EndpointOutput(serializers.Serializer[WebhookEndpoint]):
    id = serializers.IntegerField()
    url = serializers.URLField()
    description = serializers.CharField()
    event_types = serializers.ListField(
        child=serializers.CharField(), help_text="Empty: every type."
    )
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(
        help_text="Why not in use: `by_lender`, `gone` (a 410), `failing` (a day of failures)."
    )
    failing_since = serializers.DateTimeField(allow_null=True)
    previous_secret_until = serializers.DateTimeField(
        source="previous_until",
        allow_null=True,
        help_text="After a rotation, the previous secret signs beside the new one until then.",
    )
    created_at = serializers.DateTimeField()


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(
        allow_null=True,
        help_text="`whsec_...`: shown in this answer only (null in a replay of it); verify "
        "each delivery's `webhook-signature` with it.",
    )


def _with_secret(outcome: Any) -> dict[str, Any]:
    return {**EndpointOutput(outcome.endpoint).data, "secret": outcome.secret}


class _ShowsSecretOnce:
    """A repeat of the POST answers as the first did, less the secret (kept only sealed)."""

    def idempotency_stored(self, data: Any) -> Any:
        return {**data, "secret": None} if isinstance(data, dict) and "secret" in data else data


class _EndpointInput(serializers.Serializer[dict[str, Any]]):
    url = serializers.URLField(max_length=500, help_text="An https:// address.")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=PUBLIC_TYPES),
        required=False,
        default=list,
        max_length=len(PUBLIC_TYPES),
        help_text="The types it takes; none: every type.",
    )
    description = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True
    )
    enabled = serializers.BooleanField(required=False, default=True)


class WebhookEndpointListApi(_ShowsSecretOnce, LenderApiMixin, APIView):
    """The lender's webhook endpoints; a new one, with its signing secret shown once."""

    required_scopes = WEBHOOKS_MANAGE

    class InputSerializer(_EndpointInput):
        pass

    @extend_schema(
        operation_id="lender_webhook_endpoints_list",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(EndpointOutput), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        endpoints = webhook_endpoint_list(lender_id=lender_id_of(request))
        return paginated(request, self, endpoints, EndpointOutput)

    @extend_schema(
        operation_id="lender_webhook_endpoints_create",
        request=InputSerializer,
        responses={201: EndpointWithSecretOutput, **error_responses(*WRITE_ERRORS)},
        description="Events from now on reach it, signed in the Standard Webhooks format "
        "with the `secret` of this answer, which is never shown again.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = webhook_endpoint_create(
            lender_id=lender_id_of(request), actor=actor_of(request), **data.validated_data
        )
        return Response(_with_secret(outcome), status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(LenderApiMixin, APIView):
    """One endpoint: read, change (any of its fields), delete (with its delivery log)."""

    required_scopes = WEBHOOKS_MANAGE

    class InputSerializer(_EndpointInput):
        url = serializers.URLField(max_length=500, required=False)
        event_types = serializers.ListField(
            child=serializers.ChoiceField(choices=PUBLIC_TYPES),
            required=False,
            max_length=len(PUBLIC_TYPES),
            help_text="The types it takes; none: every type.",
        )
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        enabled = serializers.BooleanField(
            required=False, help_text="true turns an endpoint that was off back on."
        )

    @extend_schema(
        operation_id="lender_webhook_endpoint_read",
        responses={200: EndpointOutput, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = webhook_endpoint_get(lender_id=lender_id_of(request), endpoint_id=endpoint_id)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="lender_webhook_endpoint_update",
        request=InputSerializer,
        responses={200: EndpointOutput, **error_responses(*WRITE_ERRORS)},
    )
    def patch(self, request: Request, endpoint_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lender_id = lender_id_of(request)
        current = webhook_endpoint_get(lender_id=lender_id, endpoint_id=endpoint_id)
        values = {
            "url": current.url,
            "event_types": list(current.event_types),
            "description": current.description,
            "enabled": current.enabled,
            **data.validated_data,
        }
        endpoint = webhook_endpoint_update(
            lender_id=lender_id, endpoint_id=endpoint_id, actor=actor_of(request), **values
        )
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(
        operation_id="lender_webhook_endpoint_delete",
        responses={204: OpenApiResponse(description="Deleted."), **error_responses(*READ_ERRORS)},
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        webhook_endpoint_delete(
            lender_id=lender_id_of(request), endpoint_id=endpoint_id, actor=actor_of(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointSecretRotateApi(_ShowsSecretOnce, LenderApiMixin, APIView):
    """A new signing secret; the previous one signs beside it for a while (README)."""

    required_scopes = WEBHOOKS_MANAGE

    @extend_schema(
        operation_id="lender_webhook_endpoint_secret_rotate",
        request=None,
        responses={201: EndpointWithSecretOutput, **error_responses(*WRITE_ERRORS)},
        description="Each delivery carries two `v1,` signatures, the new secret's and the "
        "previous one's, until `previous_secret_until`: switch your receiver meanwhile.",
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        outcome = webhook_endpoint_secret_rotate(
            lender_id=lender_id_of(request), endpoint_id=endpoint_id, actor=actor_of(request)
        )
        return Response(_with_secret(outcome), status=status.HTTP_201_CREATED)


class DeliveryOutput(serializers.Serializer[WebhookDelivery]):
    id = serializers.IntegerField()
    endpoint_id = serializers.IntegerField()
    event_id = serializers.SerializerMethodField(help_text="The event's `id` (`evt_<n>`).")
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status = serializers.IntegerField(allow_null=True, help_text="Your receiver's answer.")
    last_error = serializers.CharField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_event_id(self, delivery: WebhookDelivery) -> str:
        return f"evt_{delivery.event_id}"


class WebhookDeliveryListApi(LenderApiMixin, APIView):
    """An endpoint's delivery log, newest first."""

    required_scopes = WEBHOOKS_MANAGE

    class FilterSerializer(serializers.Serializer[dict[str, Any]]):
        status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)

    @extend_schema(
        operation_id="lender_webhook_deliveries_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: page_of(DeliveryOutput), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        lender_id = lender_id_of(request)
        webhook_endpoint_get(lender_id=lender_id, endpoint_id=endpoint_id)  # 404 if not ours
        deliveries = webhook_delivery_list(
            lender_id=lender_id, endpoint_id=endpoint_id, **filters.validated_data
        )
        return paginated(request, self, deliveries, DeliveryOutput)


class WebhookDeliveryResendApi(LenderApiMixin, APIView):
    """Send a delivery again ("send again" in the back office), whatever became of it."""

    required_scopes = WEBHOOKS_MANAGE

    @extend_schema(
        operation_id="lender_webhook_delivery_resend",
        request=None,
        responses={202: DeliveryOutput, **error_responses(*WRITE_ERRORS)},
        description="The delivery is pending again, due now, with a fresh retry window.",
    )
    def post(self, request: Request, delivery_id: int) -> Response:
        lender_id = lender_id_of(request)
        resent = webhook_deliveries_resend(
            lender_id=lender_id, delivery_ids=[delivery_id], actor=actor_of(request)
        )
        if not resent:  # another lender's delivery looks like none at all
            raise NotFound(delivery_id=delivery_id)
        delivery = webhook_delivery_list(lender_id=lender_id).get(pk=delivery_id)
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)
