"""``POST /api/funds/v1/alerts``: money arrived in a customer's account (funds alerts).

Sent by the lender's account-information provider, or the lender's bridge to one, signed in
the Standard Webhooks format with the lender's secret (its funds-alerts account) and naming
the lender in ``X-Lender``. A missing or wrong signature, or a timestamp more than five
minutes from now, is refused (401) and recorded on the platform's chain (the caller is
nobody we know yet); a body that is not an alert, 400. A genuine alert is kept and answered
200 with what became of it (``apps.collections.services.funds``): a link to pay sent, or why
not; a replay of one, ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.collections.api.views import EventMalformed, SignatureRefused, TimestampRefused
from apps.collections.services import (
    FundsAlertIn,
    funds_alert_apply,
    plaid_webhook_apply,
    webhook_rejection_record,
)
from apps.core.actor import Actor, ActorType, client_ip
from apps.core.api.body import body_read
from apps.core.api.callbacks import ProviderCallbackApi
from apps.core.api.schema import error_responses
from apps.core.errors import DomainError
from apps.integrations.funds import FUNDS_ALERTS, AlertRefused, funds_account_for, funds_alert_read
from apps.integrations.funds_plaid import HEADER as PLAID_HEADER
from apps.integrations.funds_plaid import PLAID, plaid_account_for
from apps.integrations.funds_plaid import webhook_read as plaid_webhook_read
from apps.integrations.payments.signing import LENDER_HEADER
from apps.lenders.selectors import lender_get

REFUSALS: dict[str, type[DomainError]] = {
    "signature_invalid": SignatureRefused,
    "stale": TimestampRefused,
    "malformed": EventMalformed,
}


@contextmanager
def _unverified(*, provider: str, slug: str, actor: Actor) -> Iterator[None]:
    """Around reading a caller's body and checking its signature: a refusal (``AlertRefused``
    as its ``DomainError``) is recorded on the platform's chain, since before the signature
    holds the caller is nobody we know, and raised."""
    try:
        try:
            yield
        except AlertRefused as exc:
            raise REFUSALS[exc.problem]() from exc
    except DomainError as exc:
        webhook_rejection_record(
            lender_id=None,
            provider=provider,
            problem=exc.code,
            actor=actor,
            extra={"lender": slug[:60], "verified": False},
        )
        raise


class FundsAlertApi(ProviderCallbackApi):
    """One funds alert (module docstring)."""

    class InputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(choices=["funds.available"])
        customer_reference = serializers.CharField(max_length=40)
        provider = serializers.CharField(max_length=40)
        amount_available = serializers.DecimalField(max_digits=18, decimal_places=3)
        currency = serializers.CharField(min_length=3, max_length=3)
        observed_at = serializers.DateTimeField()

    class OutputSerializer(serializers.Serializer):
        outcome = serializers.CharField()
        alert_id = serializers.IntegerField()

    @extend_schema(
        request={"application/json": InputSerializer},
        responses={200: OutputSerializer, **error_responses(400, 401, 413, 429)},
        parameters=[
            OpenApiParameter(LENDER_HEADER, str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("webhook-id", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("webhook-timestamp", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("webhook-signature", str, OpenApiParameter.HEADER, required=True),
        ],
        auth=[],
        operation_id="funds_alert_create",
    )
    def post(self, request: Request) -> Response:
        slug = request.headers.get(LENDER_HEADER, "")
        actor = Actor(type=ActorType.SYSTEM, id=f"provider:{FUNDS_ALERTS}", ip=client_ip(request))
        with _unverified(provider=FUNDS_ALERTS, slug=slug, actor=actor):
            body = body_read(request, limit=settings.PAYMENTS_WEBHOOK_MAX_BYTES)
            account = funds_account_for(lender_slug=slug) if slug else None
            if account is None:
                raise SignatureRefused()
            alert = funds_alert_read(
                secret=account.secret, body=body, headers=dict(request.headers)
            )
        outcome = funds_alert_apply(
            lender=lender_get(lender_id=account.lender_id),
            alert=FundsAlertIn(
                webhook_id=alert.webhook_id,
                reference=alert.reference,
                provider=alert.provider,
                available=alert.amount,
                currency=alert.currency,
                observed_at=alert.observed_at,
            ),
            actor=actor,
        )
        return Response(self.OutputSerializer(outcome).data)


class PlaidWebhookApi(ProviderCallbackApi):
    """``POST /api/funds/v1/plaid/<lender>/``: Plaid's webhook for the lender's Items
    (``apps.integrations.funds_plaid``), signed by its ``Plaid-Verification`` JWT. A missing
    or wrong one, a body whose hash it does not match, or one signed more than five minutes
    ago is refused (401) and recorded on the platform's chain, as is an address with no Plaid
    account in use; a body that is not a webhook, 400. A genuine one is answered 200 with what
    became of it (``apps.collections.services.funds_plaid``): ``ignored`` for a code that says
    nothing of money, else the alert's outcome or why none followed."""

    class InputSerializer(serializers.Serializer):
        webhook_type = serializers.CharField(max_length=40)
        webhook_code = serializers.CharField(max_length=60)
        item_id = serializers.CharField(max_length=100)

    class OutputSerializer(serializers.Serializer):
        outcome = serializers.CharField()
        alert_id = serializers.IntegerField(allow_null=True)

    @extend_schema(
        request={"application/json": InputSerializer},
        responses={200: OutputSerializer, **error_responses(400, 401, 413, 429)},
        parameters=[
            OpenApiParameter(PLAID_HEADER, str, OpenApiParameter.HEADER, required=True),
        ],
        auth=[],
        operation_id="funds_plaid_webhook_create",
    )
    def post(self, request: Request, lender_slug: str) -> Response:
        actor = Actor(type=ActorType.SYSTEM, id=f"provider:{PLAID}", ip=client_ip(request))
        with _unverified(provider=PLAID, slug=lender_slug, actor=actor):
            body = body_read(request, limit=settings.PAYMENTS_WEBHOOK_MAX_BYTES)
            account = plaid_account_for(lender_slug=lender_slug)
            if account is None:
                raise SignatureRefused()
            webhook = plaid_webhook_read(account=account, body=body, headers=dict(request.headers))
        outcome = plaid_webhook_apply(
            lender=lender_get(lender_id=account.lender_id),
            account=account,
            webhook=webhook,
            actor=actor,
        )
        return Response(self.OutputSerializer(outcome).data)
