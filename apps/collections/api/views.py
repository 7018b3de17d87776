"""The payment provider's webhook: verified here, applied by one service."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.collections.errors import PaymentCallbackRefused
from apps.collections.models import PaymentReversal
from apps.collections.selectors import lender_id_by_slug, loan_payable_by_reference
from apps.collections.services import (
    ProviderEventOutcome,
    WebhookPayload,
    payment_webhook_apply,
    provider_event_apply,
    webhook_rejection_record,
)
from apps.core.actor import Actor, ActorType, client_ip
from apps.core.api.body import body_read
from apps.core.api.callbacks import ProviderCallbackApi as CallbackApi
from apps.core.api.fields import PlainDecimalField
from apps.core.api.schema import error_responses
from apps.core.errors import DomainError
from apps.core.money import Money, UnknownCurrency
from apps.integrations.payments.base import (
    CallbackRefused,
    PaymentEvent,
    ProviderCallback,
    ProviderError,
)
from apps.integrations.payments.generic import GenericAdapter
from apps.integrations.payments.mpesa import (
    C2B_ACCEPT,
    C2B_REJECT_ACCOUNT,
    C2B_REJECT_AMOUNT,
    CALLBACK_RECEIVED,
    Route,
)
from apps.integrations.payments.registry import (
    MPESA,
    STRIPE,
    ProviderNotConfigured,
    adapter_for_callback,
)
from apps.integrations.payments.signing import LENDER_HEADER, SIGNATURE_HEADER


class WebhookRefused(DomainError):
    """A callback we will not apply; recorded in the audit trail by the view."""


class UnknownProvider(WebhookRefused):
    code, http_status = "unknown_provider", 404
    default_message = "No such payment provider."


class SignatureRefused(WebhookRefused):
    code, http_status = "signature_invalid", 401
    default_message = "The signature is missing or does not match."


class TimestampRefused(WebhookRefused):
    code, http_status = "timestamp_stale", 401
    default_message = "The signature's timestamp is too far from now."


class EventMalformed(WebhookRefused):
    code, http_status = "invalid", 400
    default_message = "The event is not valid."


def _read_body(request: Request) -> bytes:
    return body_read(request, limit=settings.PAYMENTS_WEBHOOK_MAX_BYTES)


class PaymentWebhookApi(CallbackApi):
    """POST /api/payments/v1/webhooks/<provider>/ : a payment or reversal from a provider.

    Headers: ``X-Lender: <lender slug>`` and ``X-Signature: t=<unix>,v1=<hex>``,
    HMAC-SHA256 over ``<t>.<raw body>`` with the lender's secret for this provider.
    """

    # _read_body refuses over PAYMENTS_WEBHOOK_MAX_BYTES from the declared length, before
    # reading, and the refusal is audited like every other (apps/core/api/middleware.py)

    class DataSerializer(serializers.Serializer):
        loan = serializers.CharField(max_length=20)
        amount = PlainDecimalField(max_digits=18, decimal_places=3, min_value=Decimal("0.001"))
        currency = serializers.CharField(min_length=3, max_length=3)
        reference = serializers.CharField(max_length=100)
        received_at = serializers.DateTimeField(
            required=False,
            help_text="When the money arrived (default: now). Not before the loan was signed, "
            "nor later than now by more than the signature's tolerance.",
        )
        reverses = serializers.CharField(max_length=100, required=False, default="")
        kind = serializers.ChoiceField(
            choices=PaymentReversal.Kind.choices,
            required=False,
            default=PaymentReversal.Kind.CHARGEBACK,
        )

    class InputSerializer(serializers.Serializer):
        id = serializers.CharField(max_length=100)
        type = serializers.ChoiceField(choices=["payment.succeeded", "payment.reversed"])
        data = serializers.DictField()

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["applied", "duplicate"])
        payment_id = serializers.IntegerField(allow_null=True)
        reversal_id = serializers.IntegerField(allow_null=True)

    @extend_schema(
        # The view reads the raw body (the signature covers its bytes) and checks the envelope
        # and its data apart (_payload), but the provider sends one document: the schema shows
        # it whole, so a client, or the schema drill, can build an event that gets past shape.
        request={
            "application/json": inline_serializer(
                "PaymentWebhookEvent",
                fields={**InputSerializer._declared_fields, "data": DataSerializer()},
            )
        },
        # 401 signature or timestamp, 404 provider or loan, 409 event id reused or loan not payable
        responses={200: OutputSerializer, **error_responses(400, 401, 404, 409, 413, 429)},
        parameters=[
            OpenApiParameter(LENDER_HEADER, str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True),
        ],
        auth=[],
    )
    def post(self, request: Request, provider: str) -> Response:
        lender_id: int | None = None
        verified = False
        try:
            if provider not in settings.PAYMENTS_PROVIDERS:
                raise UnknownProvider()
            body = _read_body(request)
            slug = request.headers.get(LENDER_HEADER, "")
            lender_id = lender_id_by_slug(slug=slug)
            self._verify(request, lender_id, slug, provider, body)
            verified = True
            payload = self._payload(body)
            outcome = payment_webhook_apply(
                lender_id=lender_id,
                provider=provider,
                payload=payload,
                body=body,
                actor=Actor(
                    type=ActorType.SYSTEM, id=f"provider:{provider}", ip=client_ip(request)
                ),
            )
        except DomainError as exc:
            # Every refusal is on the record. Before the signature holds, the
            # caller is nobody we know: it goes on the platform chain, never on
            # a lender's, so an unsigned caller cannot write into a lender's
            # evidence or contend for its chain.
            webhook_rejection_record(
                lender_id=lender_id if verified else None,
                provider=provider,
                problem=exc.code,
                actor=Actor(
                    type=ActorType.SYSTEM, id=f"provider:{provider}", ip=client_ip(request)
                ),
                extra={
                    "event_id": getattr(exc, "extra", {}).get("event_id", ""),
                    "lender": request.headers.get(LENDER_HEADER, "")[:60],
                    "verified": verified,
                },
            )
            raise
        return Response(self.OutputSerializer(outcome).data, status=status.HTTP_200_OK)

    def _verify(
        self, request: Request, lender_id: int | None, slug: str, provider: str, body: bytes
    ) -> None:
        if lender_id is None:
            raise SignatureRefused()
        try:
            GenericAdapter(provider=provider, lender_slug=slug).verify_signature(
                header=request.headers.get(SIGNATURE_HEADER, ""),
                lender_slug=slug,
                body=body,
            )
        except CallbackRefused as exc:
            raise _refusal(exc) from exc

    def _payload(self, body: bytes) -> WebhookPayload:
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise EventMalformed("The body is not JSON.") from exc
        envelope = self.InputSerializer(data=raw if isinstance(raw, dict) else {})
        if not envelope.is_valid():
            raise EventMalformed(fields=envelope.errors)
        data = self.DataSerializer(data=envelope.validated_data["data"])
        if not data.is_valid():
            raise EventMalformed(fields=data.errors)
        values = data.validated_data
        if envelope.validated_data["type"] == "payment.reversed" and not values["reverses"]:
            raise EventMalformed(fields={"reverses": ["A reversal names the payment it reverses."]})
        try:
            amount = Money(values["amount"], values["currency"].upper())
        except UnknownCurrency as exc:
            raise EventMalformed(fields={"currency": ["Not an ISO 4217 currency."]}) from exc
        received_at: datetime = values.get("received_at") or timezone.now()
        # a provider's clock may run a little fast (the signature's tolerance), no more: a
        # payment dated later would sort after every payment to come. Dated before its loan
        # was signed is the service's rule (it needs the loan).
        tolerance = settings.PAYMENTS_WEBHOOK_TOLERANCE_SECONDS
        if received_at > timezone.now() + timedelta(seconds=tolerance):
            late = _(
                "Later than now by more than %(seconds)s seconds: money cannot be received in "
                "the future."
            )
            raise EventMalformed(fields={"received_at": [late % {"seconds": tolerance}]})
        return WebhookPayload(
            event_id=envelope.validated_data["id"],
            event_type=envelope.validated_data["type"],
            loan_reference=values["loan"],
            amount=amount,
            reference=values["reference"],
            received_at=received_at,
            reverses=values["reverses"],
            kind=values["kind"],
        )


class ProviderCallbackApi(CallbackApi):
    """A provider's callback read by its adapter (apps.integrations.payments) and applied
    by ``provider_event_apply``. Every refusal is audited, as the generic webhook's are."""

    # where the provider wants 200 even for a callback we do not apply (Daraja retries
    # and may stop calling an address that answers otherwise)
    answers_200_once_verified = False
    routes: tuple[tuple[str, str], ...] = ()  # the (provider, route) pairs the view takes

    def handle(
        self, request: Request, *, provider: str, lender_slug: str, token: str = "", route: str = ""
    ) -> Response:
        lender_id: int | None = None
        verified = False
        actor = Actor(type=ActorType.SYSTEM, id=f"provider:{provider}", ip=client_ip(request))
        try:
            body = _read_body(request)
            if (provider, route) not in self.routes:
                raise UnknownProvider()
            try:  # the lender and its account, in one read
                lender_id, adapter = adapter_for_callback(
                    lender_slug=lender_slug, provider=provider
                )
            except ProviderNotConfigured as exc:
                raise UnknownProvider() from exc
            callback = ProviderCallback(
                body=body,
                headers={k.lower(): v for k, v in request.headers.items()},
                remote_addr=client_ip(request) or "",
                path_token=token,
                route=route,
            )
            try:
                events = adapter.parse_callback(callback)
            except CallbackRefused as exc:
                verified = exc.verified
                raise _refusal(exc) from exc
            except ProviderError as exc:  # it asked the provider back and got no answer
                verified = True
                raise ProviderUnavailable(provider_code=exc.code) from exc
            verified = True
            if route == Route.C2B_VALIDATION:
                return Response(self._validate(lender_id, events))
            outcomes = [
                provider_event_apply(lender_id=lender_id, event=event, body=body, actor=actor)
                for event in events
            ]
        except DomainError as exc:
            webhook_rejection_record(
                lender_id=lender_id if verified else None,
                provider=provider,
                problem=exc.code,
                actor=actor,
                extra={"lender": lender_slug[:60], "verified": verified, "route": route},
            )
            if verified and self.answers_200_once_verified:
                return Response(
                    {"ResultCode": 0, "ResultDesc": f"Received, not applied: {exc.code}"}
                )
            if verified and isinstance(exc, PaymentCallbackRefused):
                # genuine, and not ours to apply (a checkout the lender's other business
                # made, a refund of a payment not taken here): answered 2xx, or the
                # provider retries it for days and may turn the endpoint off
                return Response(
                    {"status": "refused", "code": exc.code, "payment_id": None, "reversal_id": None}
                )
            raise
        if self.answers_200_once_verified:
            return Response(CALLBACK_RECEIVED)
        first = outcomes[0] if outcomes else ProviderEventOutcome(status="recorded")
        return Response(
            {
                "status": first.status,
                "payment_id": first.payment_id,
                "reversal_id": first.reversal_id,
            }
        )

    @staticmethod
    def _validate(lender_id: int, events: list[PaymentEvent]) -> dict[str, object]:
        """Daraja's C2B validation: take the money only for a payable loan of the lender."""
        event = events[0]
        if event.amount is None or event.amount.amount < 1:
            return C2B_REJECT_AMOUNT
        if not loan_payable_by_reference(lender_id=lender_id, reference=event.loan_reference):
            return C2B_REJECT_ACCOUNT
        return C2B_ACCEPT


class CallbackRefusedError(WebhookRefused):
    code, http_status = "callback_refused", 400
    default_message = "The callback is not valid."


class ProviderUnavailable(WebhookRefused):
    code, http_status = "provider_unavailable", 502
    default_message = "The provider could not be asked about the event; send it again."


class SourceRefused(WebhookRefused):
    code, http_status = "source_not_allowed", 403
    default_message = "The callback did not come from the provider."


def _refusal(exc: CallbackRefused) -> WebhookRefused:
    """The adapter's refusal as an answer: 401 for a signature, 403 for a path or an
    address that is not the provider's, 400 for the rest."""
    if exc.problem == "signature_invalid":
        return SignatureRefused()
    if exc.problem == "timestamp_stale":
        return TimestampRefused()
    if exc.problem in ("path_token_invalid", "source_not_allowed"):
        refused = SourceRefused(str(exc))
    else:
        refused = CallbackRefusedError(str(exc))
    refused.code = exc.problem  # type: ignore[misc]  # the adapter's own code, kept for the audit trail
    return refused


class DarajaCallbackApi(ProviderCallbackApi):
    """POST /api/payments/v1/daraja/<lender>/<token>/<route>/ : M-Pesa's callbacks for a
    lender's paybill (route ``stk``, ``c2b-validation`` or ``c2b-confirmation``).

    Daraja signs nothing: the path carries the lender's secret token, the caller must be
    one of MPESA_CALLBACK_ALLOWED_IPS, and the payment is checked against the one we
    started (amount, receipt, a status query when in doubt). Once those hold, Daraja is
    answered 200 whatever we make of the callback; what was refused is in the audit trail.
    """

    answers_200_once_verified = True
    routes = tuple((MPESA, r) for r in (Route.STK, Route.C2B_VALIDATION, Route.C2B_CONFIRMATION))

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 403, 404, 413, 429)},
        auth=[],
    )
    def post(self, request: Request, lender_slug: str, token: str, route: str) -> Response:
        return self.handle(
            request, provider=MPESA, lender_slug=lender_slug, token=token, route=route
        )


class SignedProviderWebhookApi(ProviderCallbackApi):
    """POST /api/payments/v1/providers/<provider>/<lender>/ : a provider's signed webhook
    (Stripe: ``Stripe-Signature`` over the raw body with the endpoint's secret, 300 s)."""

    routes = ((STRIPE, ""),)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: inline_serializer(
                "ProviderWebhookOutcome",
                fields={
                    "status": serializers.CharField(
                        help_text="applied, duplicate, recorded (nothing to apply), unmatched, "
                        "or refused (genuine but not ours to apply: `code` says why)"
                    ),
                    "code": serializers.CharField(required=False),
                    "payment_id": serializers.IntegerField(allow_null=True),
                    "reversal_id": serializers.IntegerField(allow_null=True),
                },
            ),
            **error_responses(400, 401, 404, 409, 413, 429, 502),
        },
        auth=[],
    )
    def post(self, request: Request, provider: str, lender_slug: str) -> Response:
        return self.handle(request, provider=provider, lender_slug=lender_slug)
