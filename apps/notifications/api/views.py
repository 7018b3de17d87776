"""The messaging providers' callbacks: delivery reports, texts customers send, opt-outs, and
WhatsApp's verify-token handshake.

Each is read by the lender's provider adapter (``apps.integrations.messaging``), which
verifies it (Twilio's ``X-Twilio-Signature``, WhatsApp's ``X-Hub-Signature-256`` and verify
token, Africa's Talking's secret path token), then applied here: delivery moves the message
forward (``delivery_updates_apply``), a text from a customer is an opt-out
(``inbound_texts_apply``) or a question, answered or queued for an agent
(``apps.collections.services.inbound_texts_answer``).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request

from apps.collections.services import inbound_texts_answer, voice_key_apply
from apps.core.api.body import body_read
from apps.core.api.callbacks import ProviderCallbackApi
from apps.core.api.schema import error_responses
from apps.core.errors import DomainError
from apps.integrations.messaging.base import CallbackRefused, ProviderCallback
from apps.integrations.messaging.registry import (
    ROUTES,
    messaging_callback_target,
    messaging_callback_url,
)
from apps.integrations.voice.registry import ROUTES as VOICE_ROUTES
from apps.integrations.voice.registry import voice_account_by_slug, voice_callback_url
from apps.integrations.voice.twilio_voice import answer_twiml
from apps.lenders.selectors import lender_get
from apps.notifications.services import (
    delivery_updates_apply,
    inbound_texts_apply,
    voice_call_ended,
)

logger = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
RECEIVED = inline_serializer(
    "MessagingCallbackReceived", fields={"status": serializers.CharField()}
)


class UnknownAccount(DomainError):
    code, http_status = "unknown_provider", 404
    default_message = "No such messaging account."


class CallbackNotAccepted(DomainError):
    code, http_status = "callback_refused", 403
    default_message = "The callback is not signed by the provider."


class MessagingCallbackApi(ProviderCallbackApi):
    """``/api/messaging/v1/<provider>/<lender>/...``: one lender's messaging callbacks."""

    @extend_schema(
        request={FORM: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={
            (200, "application/json"): RECEIVED,
            (200, "text/xml"): OpenApiResponse(
                OpenApiTypes.STR, description="Twilio's: an empty TwiML answer, no reply"
            ),
            **error_responses(403, 404, 413, 429),
        },
        auth=[],
    )
    def post(self, request: Request, **kwargs: str) -> HttpResponse:
        return self.handle(request, **kwargs)

    def handle(
        self, request: Request, *, provider: str, lender_slug: str, token: str = "", route: str = ""
    ) -> HttpResponse:
        body = body_read(request, limit=settings.PAYMENTS_WEBHOOK_MAX_BYTES)
        target = messaging_callback_target(lender_slug=lender_slug, provider=provider)
        if target is None or route not in ROUTES.get(provider, ("",)):
            raise UnknownAccount()
        lender, adapter = target
        raw = request._request
        url = messaging_callback_url(provider=provider, lender_slug=lender.slug, route=route)
        query = raw.META.get("QUERY_STRING", "")
        if raw.method == "GET":
            fields = {k: str(v) for k, v in raw.GET.items()}
        elif raw.content_type == FORM:  # Twilio's and Africa's Talking's
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
        # opt-outs first; what is left is a customer's question (or words for an agent)
        inbound_texts_answer(
            lender=lender, texts=inbound_texts_apply(lender=lender, texts=read.inbound)
        )
        if provider == "twilio":  # an empty TwiML answer: no reply from Twilio itself
            return HttpResponse("<Response/>", content_type="text/xml")
        return JsonResponse({"status": "received"})


class WhatsAppWebhookApi(MessagingCallbackApi):
    """``/api/messaging/v1/whatsapp/<lender>/``: WhatsApp's webhook, and its verify-token
    handshake (a GET answered with the challenge, as Meta asks when the address is set)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("hub.mode", str),
            OpenApiParameter("hub.verify_token", str),
            OpenApiParameter("hub.challenge", str),
        ],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description="The handshake's hub.challenge, echoed"
            ),
            **error_responses(403, 404, 413, 429),
        },
        auth=[],
    )
    def get(self, request: Request, **kwargs: str) -> HttpResponse:
        return self.handle(request, **kwargs)


class CallNotFound(DomainError):
    code, http_status = "unknown_call", 404
    default_message = "No such call."


class VoiceCallbackApi(ProviderCallbackApi):
    """``/api/voice/v1/twilio/<lender>/<call id>/<route>/``: Twilio's callbacks about one
    reminder call, signed with the account's auth token (``X-Twilio-Signature``). ``gather``
    carries the key the customer pressed (``Digits``) and is answered with the TwiML the
    call says next; ``status`` how the call ended (``CallStatus``)."""

    @extend_schema(
        request={FORM: OpenApiTypes.OBJECT},
        responses={
            (200, "text/xml"): OpenApiResponse(
                OpenApiTypes.STR, description="TwiML: what the call says next"
            ),
            **error_responses(403, 404, 413, 429),
        },
        auth=[],
    )
    def post(self, request: Request, *, lender_slug: str, call_id: str, route: str) -> HttpResponse:
        body = body_read(request, limit=settings.PAYMENTS_WEBHOOK_MAX_BYTES)
        account = voice_account_by_slug(lender_slug=lender_slug)
        if account is None or route not in VOICE_ROUTES:
            raise UnknownAccount()
        if not (call_id.isascii() and call_id.isdigit() and len(call_id) < 19):  # JSON 404s
            raise CallNotFound()
        call = int(call_id)
        url = voice_callback_url(lender_slug=lender_slug, call_id=call, route=route)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            fields = account.adapter.verified_fields(
                url=url, fields=form, headers=dict(request.headers)
            )
            if route == "status":
                status = account.adapter.status_read(fields)
        except CallbackRefused as exc:
            logger.warning("voice callback refused problem=%s", exc.problem)
            raise CallbackNotAccepted(problem=exc.problem) from exc
        lender = lender_get(lender_id=account.lender_id)
        if route == "status":
            if status.final:
                voice_call_ended(
                    lender_id=lender.pk,
                    call_id=call,
                    call_sid=status.call_sid,
                    answered=status.answered,
                )
            return HttpResponse("<Response/>", content_type="text/xml")
        reply = voice_key_apply(lender=lender, call_id=call, digit=fields.get("Digits", "")[:1])
        if reply is None:
            raise CallNotFound()
        twiml = answer_twiml(text=reply.text, language=reply.language, dial=reply.dial)
        return HttpResponse(twiml, content_type="text/xml")
