"""The messaging providers' callbacks: delivery reports, texts customers send, opt-outs, and
WhatsApp's verify-token handshake.

Each is read by the lender's provider adapter (``apps.integrations.messaging``), which
verifies it (Twilio's ``X-Twilio-Signature``, WhatsApp's ``X-Hub-Signature-256`` and verify
token, Africa's Talking's secret path token), then applied here: delivery moves the message
forward (``delivery_updates_apply``), a text from a customer is an opt-out or a question
(``inbound_texts_apply``).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpResponse
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.core.api.body import body_read
from apps.core.api.throttling import ScopedRateThrottle
from apps.core.errors import DomainError
from apps.integrations.messaging.base import CallbackRefused, ProviderCallback
from apps.integrations.messaging.registry import (
    messaging_callback_adapter,
    messaging_callback_url,
)
from apps.lenders.models import Lender
from apps.notifications.services import delivery_updates_apply, inbound_texts_apply

logger = logging.getLogger(__name__)


class UnknownAccount(DomainError):
    code, http_status = "unknown_provider", 404
    default_message = "No such messaging account."


class CallbackNotAccepted(DomainError):
    code, http_status = "callback_refused", 403
    default_message = "The callback is not signed by the provider."


class MessagingCallbackApi(APIView):
    """``/api/messaging/v1/<provider>/<lender>/...``: one lender's messaging callbacks."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "webhooks"
    parser_classes = ()
    body_size_checked_by_view = True

    def get(self, request: Request, **kwargs: str) -> HttpResponse:
        return self.handle(request, **kwargs)

    def post(self, request: Request, **kwargs: str) -> HttpResponse:
        return self.handle(request, **kwargs)

    def handle(
        self, request: Request, *, provider: str, lender_slug: str, token: str = "", route: str = ""
    ) -> HttpResponse:
        body = body_read(request, limit=settings.PAYMENTS_WEBHOOK_MAX_BYTES)
        lender = Lender.objects.filter(slug=lender_slug).first()
        adapter = (
            messaging_callback_adapter(lender_id=lender.pk, provider=provider)
            if lender is not None
            else None
        )
        if lender is None or adapter is None:
            raise UnknownAccount()
        raw = request._request
        url = messaging_callback_url(provider=provider, lender_slug=lender.slug, route=route)
        query = raw.META.get("QUERY_STRING", "")
        if raw.method == "GET":
            fields = {k: str(v) for k, v in raw.GET.items()}
        elif raw.content_type == "application/x-www-form-urlencoded":  # Twilio's and AT's
            fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            fields = {}
        callback = ProviderCallback(
            url=f"{url}?{query}" if query else url,
            method=raw.method or "POST",
            headers=dict(request.headers),
            body=body,
            fields=fields,
            path_token=token,
        )
        try:
            read = adapter.read_callback(callback)
        except CallbackRefused as exc:
            logger.warning(
                "messaging callback refused provider=%s problem=%s", provider, exc.problem
            )
            raise CallbackNotAccepted(problem=exc.problem) from exc
        if read.challenge:
            return HttpResponse(read.challenge, content_type="text/plain")
        delivery_updates_apply(lender_id=lender.pk, updates=read.updates)
        inbound_texts_apply(lender=lender, texts=read.inbound)
        if provider == "twilio":  # an empty TwiML answer: no reply from Twilio itself
            return HttpResponse("<Response/>", content_type="text/xml")
        return HttpResponse(status=200)
