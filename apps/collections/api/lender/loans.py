"""Loans, read by the lender's own systems."""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.collections.api.lender.base import READ_ERRORS, WRITE_ERRORS, lender_today, paginated
from apps.collections.models import Loan, Stage
from apps.collections.schedule import Line
from apps.collections.selectors import (
    loan_days_overdue_of,
    loan_get_for_lender,
    loan_list_for_lender,
    loan_outstanding,
)
from apps.collections.services import ConsentIn, CustomerIn, loan_create_for_lender
from apps.core.api.fields import PlainDecimalField
from apps.core.api.pagination import PAGE_PARAMETERS, page_of
from apps.core.api.schema import error_responses
from apps.core.money import Money
from apps.devices.provisioning import provisioning_qr
from apps.devices.selectors import device_waiting_for_loan
from apps.devices.services import enrollment_token_mint
from apps.lenders.api.auth import LenderApiMixin, actor_of, api_key_of, lender_id_of
from apps.lenders.models import ApiKey

LOANS_READ = {ApiKey.Scope.LOANS_READ.value}
LOANS_WRITE = {ApiKey.Scope.LOANS_WRITE.value}


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
    """The lender's loans, newest first, by stage, days overdue or the id in its system; and
    a loan its own system sold."""

    required_scopes = {"GET": LOANS_READ, "POST": LOANS_WRITE}

    class InputSerializer(serializers.Serializer[dict[str, Any]]):
        class CustomerSerializer(serializers.Serializer[dict[str, Any]]):
            full_name = serializers.CharField(max_length=200)
            phone = serializers.CharField(max_length=32)
            national_id = serializers.CharField(max_length=40)
            date_of_birth = serializers.DateField(required=False, allow_null=True)
            locale = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)

        class PhoneSerializer(serializers.Serializer[dict[str, Any]]):
            imei = serializers.RegexField(r"^[0-9]{15}$", help_text="15 digits (Luhn checked).")
            brand = serializers.CharField(max_length=60)
            model = serializers.CharField(max_length=80)

        class ConsentSerializer(serializers.Serializer[dict[str, Any]]):
            text = serializers.CharField(max_length=20000, help_text="Exactly as shown.")
            text_sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$")
            text_version = serializers.CharField(max_length=40)
            method = serializers.CharField(
                max_length=20, help_text="How your channel took it: sms_code, signature..."
            )
            given_at = serializers.DateTimeField()

        class InstallmentSerializer(serializers.Serializer[dict[str, Any]]):
            due_date = serializers.DateField()
            principal = PlainDecimalField(max_digits=18, decimal_places=3)
            interest = PlainDecimalField(max_digits=18, decimal_places=3)
            fee = PlainDecimalField(max_digits=18, decimal_places=3)

        external_id = serializers.CharField(
            max_length=100, help_text="The loan's id in your system."
        )
        customer = CustomerSerializer()
        phone = PhoneSerializer()
        product_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        device_price = PlainDecimalField(max_digits=18, decimal_places=3)
        down_payment = PlainDecimalField(max_digits=18, decimal_places=3)
        consent = ConsentSerializer()
        schedule = InstallmentSerializer(
            many=True,
            required=False,
            help_text="Your own installments, in order, instead of the product's: each due "
            "after the one before and after today, the principals adding up to the price less "
            "the down payment.",
        )

    class CreatedSerializer(LoanOutput):
        device_id = serializers.IntegerField()

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

    @extend_schema(
        operation_id="lender_loans_create",
        request=InputSerializer,
        responses={
            201: CreatedSerializer,
            200: CreatedSerializer,
            **error_responses(*WRITE_ERRORS),
        },
        description="Sign a loan your loan system sold, under its `external_id`, with the "
        "customer, the phone and the consent your channel recorded; the phone then waits to "
        "enrol (`POST /loans/{id}/enrollment-code`). The same `external_id` again returns the "
        "loan (200); with other terms, 409 `idempotency_conflict`.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        currency = api_key_of(request).lender.currency
        created = loan_create_for_lender(
            lender_id=lender_id_of(request),
            external_id=values["external_id"],
            customer=CustomerIn(**values["customer"]),
            product_id=values["product_id"],
            device_price=Money(values["device_price"], currency),
            down_payment=Money(values["down_payment"], currency),
            imei=values["phone"]["imei"],
            brand=values["phone"]["brand"],
            model_name=values["phone"]["model"],
            consent=ConsentIn(**values["consent"]),
            actor=actor_of(request),
            schedule=[
                Line(sequence=n, **line) for n, line in enumerate(values["schedule"], start=1)
            ]
            if "schedule" in values
            else None,
        )
        today = lender_today(request)
        loan = loan_get_for_lender(
            lender_id=created.loan.lender_id, loan_id=created.loan.pk, today=today
        )
        loan.device_id = created.device.pk  # type: ignore[attr-defined]  # for the output
        return Response(
            self.CreatedSerializer(loan, context={"today": today}).data,
            status=status.HTTP_201_CREATED if created.created else status.HTTP_200_OK,
        )


class LoanEnrollmentCodeApi(LenderApiMixin, APIView):
    """A fresh enrollment code for the loan's phone waiting to enrol, as the provisioning QR
    code (PNG and SVG) and its JSON payload, for the lender's own counter app to show.
    Earlier codes of the phone stop working."""

    required_scopes = LOANS_WRITE

    class OutputSerializer(serializers.Serializer[dict[str, Any]]):
        device_id = serializers.IntegerField()
        expires_at = serializers.DateTimeField()
        payload = serializers.DictField(help_text="The Android provisioning JSON the QR holds.")
        qr_svg = serializers.CharField(help_text="The QR code as an SVG document.")
        qr_png_base64 = serializers.CharField(help_text="The QR code as a PNG, base64.")

    @extend_schema(
        operation_id="lender_loans_enrollment_code",
        request=None,
        responses={
            201: OutputSerializer,
            **error_responses(*WRITE_ERRORS),
        },
    )
    def post(self, request: Request, loan_id: int) -> Response:
        lender_id = lender_id_of(request)
        loan = loan_get_for_lender(
            lender_id=lender_id, loan_id=loan_id, today=lender_today(request)
        )
        device = device_waiting_for_loan(lender_id=lender_id, loan_id=loan.pk)
        minted = enrollment_token_mint(device_id=device.pk, actor=actor_of(request))
        svg, png = provisioning_qr(minted.payload)
        body = {
            "device_id": device.pk,
            "expires_at": minted.expires_at,
            "payload": minted.payload,
            "qr_svg": svg,
            "qr_png_base64": base64.b64encode(png).decode(),
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


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
