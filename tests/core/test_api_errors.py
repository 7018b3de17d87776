"""The one exception handler gives every API error the body {code, message, extra}."""

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from apps.core.errors import DomainError, IdempotencyConflict


class LoanNotPayable(DomainError):
    code, http_status = "loan_not_payable", 409
    default_message = "This loan cannot take payments."


class ProbeApi(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()

    class InputSerializer(serializers.Serializer):
        amount = serializers.DecimalField(max_digits=18, decimal_places=2)

    def post(self, request):
        kind = request.query_params["kind"]
        if kind == "domain":
            raise LoanNotPayable(loan_id=7)
        if kind == "conflict":
            raise IdempotencyConflict(key="evt-1")
        if kind == "model":
            raise DjangoValidationError({"amount": ["Too large."]})
        if kind == "boom":
            raise RuntimeError("secret detail that must not leak")
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        return Response({"ok": True})


def call(kind: str, data: dict | None = None):
    request = APIRequestFactory().post(f"/?kind={kind}", data or {}, format="json")
    return ProbeApi.as_view()(request)


def test_domain_error_keeps_its_code_status_and_extra() -> None:
    response = call("domain")
    assert response.status_code == 409
    assert response.data == {
        "code": "loan_not_payable",
        "message": "This loan cannot take payments.",
        "extra": {"loan_id": 7},
    }
    assert call("conflict").data["code"] == "idempotency_conflict"


def test_serializer_errors_are_400_invalid_with_fields() -> None:
    response = call("shape", {"amount": "abc"})
    assert response.status_code == 400
    assert response.data["code"] == "invalid"
    assert "amount" in response.data["extra"]["fields"]


def test_model_validation_errors_are_400_invalid_with_fields() -> None:
    response = call("model")
    assert (response.status_code, response.data["extra"]["fields"]) == (
        400,
        {"amount": ["Too large."]},
    )


def test_unexpected_errors_are_500_with_a_request_id_and_no_detail(caplog) -> None:
    with caplog.at_level("ERROR"):
        response = call("boom")
    assert response.status_code == 500
    assert response.data["code"] == "server_error"
    assert "secret detail" not in str(response.data)
    assert response.data["extra"]["request_id"] in caplog.text


class NeedsLoginApi(APIView):
    def get(self, request):
        return Response({"ok": True})


@pytest.mark.django_db
def test_authentication_errors_use_the_same_shape() -> None:
    response = NeedsLoginApi.as_view()(APIRequestFactory().get("/"))
    assert response.status_code == 403  # session authentication: no WWW-Authenticate, so 403
    assert set(response.data) == {"code", "message", "extra"}
    assert response.data["code"] == "not_authenticated"


@pytest.mark.django_db
def test_the_openapi_schema_is_served(client) -> None:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content


@pytest.mark.django_db
def test_the_openapi_schema_is_valid_and_names_no_two_serializers_alike() -> None:
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
