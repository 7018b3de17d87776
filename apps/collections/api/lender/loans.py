"""Loans, read by the lender's own systems."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.collections.api.lender.base import READ_ERRORS, lender_today, paginated
from apps.collections.models import Loan, Stage
from apps.collections.selectors import (
    loan_days_overdue_of,
    loan_get_for_lender,
    loan_list_for_lender,
    loan_outstanding,
)
from apps.core.api.pagination import PAGE_PARAMETERS, page_of
from apps.core.api.schema import error_responses
from apps.lenders.api.auth import LenderApiMixin, lender_id_of
from apps.lenders.models import ApiKey

LOANS_READ = {ApiKey.Scope.LOANS_READ.value}


class LoanOutput(serializers.Serializer[Loan]):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    stage = serializers.CharField()
    customer_id = serializers.IntegerField()
    product_id = serializers.IntegerField()
    currency = serializers.CharField()
    device_price = serializers.DecimalField(
        max_digits=18, decimal_places=3, source="device_price_amount"
    )
    down_payment = serializers.DecimalField(
        max_digits=18, decimal_places=3, source="down_payment_amount"
    )
    financed = serializers.DecimalField(max_digits=18, decimal_places=3, source="financed_amount")
    signed_at = serializers.DateTimeField(allow_null=True)
    paid_off_at = serializers.DateTimeField(allow_null=True)
    days_overdue = serializers.SerializerMethodField()

    def get_days_overdue(self, loan: Loan) -> int:
        return loan_days_overdue_of(loan, today=self.context["today"])


class LoanListApi(LenderApiMixin, APIView):
    """The lender's loans, newest first, by stage, days overdue or the id in its system."""

    required_scopes = LOANS_READ

    class FilterSerializer(serializers.Serializer[dict[str, Any]]):
        stage = serializers.ChoiceField(choices=Stage.choices, required=False)
        external_id = serializers.CharField(max_length=100, required=False)
        days_overdue_min = serializers.IntegerField(min_value=0, max_value=100000, required=False)
        days_overdue_max = serializers.IntegerField(min_value=0, max_value=100000, required=False)

    @extend_schema(
        operation_id="lender_loans_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: page_of(LoanOutput), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        today = lender_today(request)
        loans = loan_list_for_lender(
            lender_id=lender_id_of(request), today=today, **filters.validated_data
        )
        return paginated(request, self, loans, LoanOutput, today=today)


class LoanDetailApi(LenderApiMixin, APIView):
    required_scopes = LOANS_READ

    class OutputSerializer(LoanOutput):
        outstanding = serializers.SerializerMethodField()

        def get_outstanding(self, loan: Loan) -> str:
            return str(loan_outstanding(loan=loan).amount)

    @extend_schema(
        operation_id="lender_loans_read",
        responses={200: OutputSerializer, **error_responses(401, 403, 404, 413, 429)},
    )
    def get(self, request: Request, loan_id: int) -> Response:
        today = lender_today(request)
        loan = loan_get_for_lender(lender_id=lender_id_of(request), loan_id=loan_id, today=today)
        return Response(self.OutputSerializer(loan, context={"today": today}).data)
