"""Payments received elsewhere, posted by the lender's own systems, and their reversals."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.collections.api.lender.base import READ_ERRORS, WRITE_ERRORS, paginated
from apps.collections.models import Payment, PaymentReversal
from apps.collections.selectors import payment_list_for_lender
from apps.collections.services import payment_record, payment_reverse
from apps.core.api.fields import PlainDecimalField
from apps.core.api.pagination import PAGE_PARAMETERS, page_of
from apps.core.api.schema import error_responses
from apps.core.money import ISO_4217_CODES, Money
from apps.lenders.api.auth import LenderApiMixin, actor_of, lender_id_of
from apps.lenders.models import ApiKey

PROVIDER = "lender_api"  # the provider of every payment a lender's system posts
PAYMENTS_WRITE = {ApiKey.Scope.PAYMENTS_WRITE.value}
# a clock a little ahead at the lender's is not a payment from the future
CLOCK_SKEW = timedelta(minutes=5)


def _received_at_check(value: Any) -> None:
    if value > timezone.now() + CLOCK_SKEW:
        raise serializers.ValidationError(_("The money cannot be received in the future."))


def _currency_check(value: str) -> None:
    if value not in ISO_4217_CODES:
        raise serializers.ValidationError(_("Not an ISO 4217 currency code."))


class PaymentOutput(serializers.Serializer[Payment]):
    id = serializers.IntegerField()
    loan_id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=3)
    reversed_amount = serializers.DecimalField(max_digits=18, decimal_places=3, default=Decimal(0))
    currency = serializers.CharField()
    channel = serializers.CharField()
    provider_reference = serializers.CharField(source="provider_ref")
    received_at = serializers.DateTimeField()


class PaymentListApi(LenderApiMixin, APIView):
    """The lender's payments, newest first (any channel), optionally of one loan."""

    required_scopes = {"GET": {ApiKey.Scope.LOANS_READ.value}, "POST": PAYMENTS_WRITE}

    class FilterSerializer(serializers.Serializer[dict[str, Any]]):
        loan_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)

    class InputSerializer(serializers.Serializer[dict[str, Any]]):
        loan_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        amount = PlainDecimalField(max_digits=18, decimal_places=3)
        currency = serializers.CharField(min_length=3, max_length=3, validators=[_currency_check])
        provider_reference = serializers.CharField(
            max_length=100, help_text="The payment's id in your payment stack: one payment each."
        )
        received_at = serializers.DateTimeField(validators=[_received_at_check])
        receipt_ref = serializers.CharField(max_length=60, required=False, default="")

    @extend_schema(
        operation_id="lender_payments_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: page_of(PaymentOutput), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        payments = payment_list_for_lender(
            lender_id=lender_id_of(request), **filters.validated_data
        )
        return paginated(request, self, payments, PaymentOutput)

    @extend_schema(
        operation_id="lender_payments_create",
        request=InputSerializer,
        responses={
            201: PaymentOutput,
            200: PaymentOutput,
            **error_responses(*WRITE_ERRORS),
        },
        description="Post a payment received elsewhere. It is allocated at once, and a phone "
        "the payment takes out of restriction is told within seconds. One payment per "
        "`provider_reference`: posting it again returns it (200), with another loan or amount "
        "409 `idempotency_conflict`.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        outcome = payment_record(
            loan_id=values["loan_id"],
            lender_id=lender_id_of(request),
            amount=Money(values["amount"], values["currency"]),
            channel=Payment.Channel.LENDER_API,
            provider=PROVIDER,
            provider_ref=values["provider_reference"],
            received_at=values["received_at"],
            receipt_ref=values["receipt_ref"],
            actor=actor_of(request),
        )
        return Response(
            PaymentOutput(outcome.payment).data,
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )


class PaymentReversalCreateApi(LenderApiMixin, APIView):
    """A chargeback or refund of a payment posted through this API."""

    required_scopes = PAYMENTS_WRITE

    class InputSerializer(serializers.Serializer[dict[str, Any]]):
        loan_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        kind = serializers.ChoiceField(choices=PaymentReversal.Kind.choices)
        amount = PlainDecimalField(max_digits=18, decimal_places=3)
        currency = serializers.CharField(min_length=3, max_length=3, validators=[_currency_check])
        provider_reference = serializers.CharField(
            max_length=100, help_text="The reversal's own id in your payment stack."
        )
        payment_provider_reference = serializers.CharField(
            max_length=100, help_text="The `provider_reference` of the payment it reverses."
        )
        received_at = serializers.DateTimeField(validators=[_received_at_check])
        reason = serializers.CharField(max_length=500, required=False, default="")

    class OutputSerializer(serializers.Serializer[PaymentReversal]):
        id = serializers.IntegerField()
        loan_id = serializers.IntegerField()
        kind = serializers.CharField()
        amount = serializers.DecimalField(max_digits=18, decimal_places=3)
        provider_reference = serializers.CharField(source="provider_ref")
        payment_provider_reference = serializers.CharField(source="payment_provider_ref")

    @extend_schema(
        operation_id="lender_payment_reversals_create",
        request=InputSerializer,
        responses={201: OutputSerializer, 200: OutputSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        outcome = payment_reverse(
            loan_id=values["loan_id"],
            lender_id=lender_id_of(request),
            kind=values["kind"],
            amount=Money(values["amount"], values["currency"]),
            provider=PROVIDER,
            provider_ref=values["provider_reference"],
            payment_provider_ref=values["payment_provider_reference"],
            received_at=values["received_at"],
            reason=values["reason"],
            actor=actor_of(request),
        )
        return Response(
            self.OutputSerializer(outcome.reversal).data,
            status=status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK,
        )
