"""The agent API: what the phone calls (enroll, check-in, ack, events, fcm-token)."""

from __future__ import annotations

import base64
import binascii

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.actor import Actor, ActorType, client_ip
from apps.core.api.schema import error_responses
from apps.core.api.throttling import ScopedRateThrottle
from apps.customers.services import LOGIN_LINK_TTL, customer_login_link_mint
from apps.devices.api.auth import DeviceAuthentication, IsDevice
from apps.devices.models import DeviceEvent
from apps.devices.services import (
    device_ack,
    device_check_in,
    device_enroll,
    device_event_report,
    device_fcm_token_set,
)
from apps.notifications.selectors import notices_pending
from apps.notifications.services import notices_ack

# What any agent call can answer besides its own errors: a body that is not valid or not
# JSON (400), no or wrong device credentials (401), a body over DATA_UPLOAD_MAX_MEMORY_SIZE
# (413, apps/core/api/middleware.py), another content type (415), the throttle.
AGENT_ERRORS = (400, 401, 413, 415, 429)


def _jsonb_storable(value: object) -> bool:
    """Whether PostgreSQL's jsonb can hold ``value``: no NUL character and no unpaired
    surrogate in any key or text (JSON can escape both). Saving either raised a DataError,
    a 500 where a 400 is due (tests/devices/test_api_sync.py; found by the schema drill).
    Walks with a stack, not recursion, so a deeply nested value is checked too."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")  # refuses an unpaired surrogate
            except UnicodeEncodeError:
                return False
            if "\x00" in item:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


class OfflineTermsSerializer(serializers.Serializer):
    token_secret = serializers.CharField(help_text="OpenPAYGO secret key, 16 bytes in hex")
    starting_code = serializers.IntegerField(help_text="OpenPAYGO starting code")
    epoch = serializers.DateField(help_text="Token values count days from this local date")
    grace_days = serializers.IntegerField()
    ladder = serializers.ListField(
        child=serializers.ListField(),
        help_text="[days overdue from, level], mildest first: the loan's restriction ladder",
    )
    timezone = serializers.CharField(help_text="The lender's: local dates are in it")
    pin_secret = serializers.CharField(help_text="Support PIN secret, 32 bytes in hex")


class DeviceEnrollApi(APIView):
    """POST /api/agent/v1/enroll : the agent, just installed from the QR code, binds the phone.

    The enrollment code (from the QR's admin-extras bundle) is the credential;
    the answer carries the device's own secret (shown once) and the lender's
    Ed25519 public key that signs the phone's desired state.
    """

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "enroll"

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=64)
        imei = serializers.CharField(max_length=20)
        serial = serializers.CharField(max_length=64, allow_blank=True, default="")
        model = serializers.CharField(max_length=80, allow_blank=True, default="")
        android_version = serializers.CharField(max_length=20, allow_blank=True, default="")
        agent_version = serializers.CharField(max_length=20, allow_blank=True, default="")
        fcm_token = serializers.CharField(
            max_length=512, allow_blank=True, default="", help_text="FCM registration token"
        )
        fid = serializers.CharField(
            max_length=512, allow_blank=True, default="", help_text="Firebase installation id"
        )
        agent_public_key = serializers.CharField(
            max_length=64, help_text="Ed25519 public key, base64"
        )

        def validate_agent_public_key(self, value: str) -> str:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise serializers.ValidationError("Not base64.") from exc
            if len(raw) != 32:
                raise serializers.ValidationError("An Ed25519 public key is 32 bytes.")
            return value

    class OutputSerializer(serializers.Serializer):
        device_id = serializers.IntegerField()
        device_secret = serializers.CharField()
        lender_public_key = serializers.CharField()
        key_version = serializers.IntegerField()
        offline = OfflineTermsSerializer(help_text="Offline unlock terms, given once.")

    @extend_schema(
        request=InputSerializer,
        # 401 unknown or revoked code, 409 used code or another phone, 410 expired code
        responses={201: OutputSerializer, **error_responses(400, 401, 409, 410, 413, 415, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        enrollment = device_enroll(
            token=values["token"],
            imei=values["imei"],
            serial=values["serial"],
            model_name=values["model"],
            android_version=values["android_version"],
            agent_version=values["agent_version"],
            fcm_token=values["fid"] or values["fcm_token"],
            push_address_kind="fid" if values["fid"] else "token",
            agent_public_key=values["agent_public_key"],
            actor=Actor(type=ActorType.DEVICE, ip=client_ip(request)),
        )
        body = {
            "device_id": enrollment.device.pk,
            "device_secret": enrollment.device_secret,
            "lender_public_key": enrollment.lender_public_key,
            "key_version": enrollment.key_version,
            "offline": enrollment.offline,
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class StateSerializer(serializers.Serializer):
    document = serializers.JSONField()
    signature = serializers.CharField(help_text="Ed25519 over the canonical document, base64")
    key_version = serializers.IntegerField()


class NoticeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    body = serializers.CharField(help_text="Shown to the customer as is, in their language.")


class DeviceApi(APIView):
    authentication_classes = (DeviceAuthentication,)
    permission_classes = (IsDevice,)
    throttle_classes = (ScopedRateThrottle,)
    throttle_scope = "agent"


class DeviceCheckInApi(DeviceApi):
    """POST /api/agent/v1/check-in : the phone is alive; it gets the newest state if it is behind."""

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(
            min_value=0, help_text="The state version the phone applied."
        )
        agent_version = serializers.CharField(max_length=20, allow_blank=True, default="")
        battery = serializers.IntegerField(
            min_value=0, max_value=100, required=False, allow_null=True
        )
        iccid_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", required=False, default="")

    class OutputSerializer(serializers.Serializer):
        state = StateSerializer(allow_null=True)
        notices = NoticeSerializer(many=True, help_text="To show, then acknowledge (notices/ack).")

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(*AGENT_ERRORS, 410)},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = device_check_in(
            device_id=request.user.device.pk,
            applied_version=values["version"],
            agent_version=values["agent_version"],
            battery_percent=values.get("battery"),
            iccid_sha256=values["iccid_sha256"],
            ip=client_ip(request),
        )
        state = result.state
        body = {
            "state": None
            if state is None
            else {
                "document": state.document,
                "signature": state.signature,
                "key_version": state.key_version,
            },
            "notices": notices_pending(loan_id=request.user.device.loan_id),
        }
        return Response(self.OutputSerializer(body).data)


class DeviceAckApi(DeviceApi):
    """POST /api/agent/v1/ack : the phone applied a state version, or failed to (error_code)."""

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(min_value=1)
        error_code = serializers.RegexField(r"^[a-z0-9_]{1,40}$", required=False, default="")

    class OutputSerializer(serializers.Serializer):
        acked_version = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(*AGENT_ERRORS, 409, 410)},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        device = device_ack(
            device_id=request.user.device.pk,
            version=data.validated_data["version"],
            error_code=data.validated_data["error_code"],
            actor=Actor(
                type=ActorType.DEVICE, id=str(request.user.device.pk), ip=client_ip(request)
            ),
        )
        return Response(self.OutputSerializer({"acked_version": device.acked_version}).data)


class DeviceEventsApi(DeviceApi):
    """POST /api/agent/v1/events : the phone reports an event; a retried report changes nothing."""

    class InputSerializer(serializers.Serializer):
        # Taken as sent: trimmed, " e-1" was silently the event "e-1", and a 65-character id
        # with a leading space passed the schema's maxLength of 64 (found by the schema drill).
        event_id = serializers.CharField(max_length=64, trim_whitespace=False)
        kind = serializers.ChoiceField(choices=DeviceEvent.Kind.choices)
        occurred_at = serializers.DateTimeField()
        detail = serializers.DictField(required=False, default=dict)

        def validate_detail(self, value: dict) -> dict:  # type: ignore[type-arg]  # free-form by design
            if len(str(value)) > 2000:
                raise serializers.ValidationError("At most 2000 characters.")
            if not _jsonb_storable(value):
                raise serializers.ValidationError(
                    "No NUL characters or unpaired surrogates in the text."
                )
            return value

    class OutputSerializer(serializers.Serializer):
        event_id = serializers.CharField()
        stored = serializers.BooleanField()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer, **error_responses(*AGENT_ERRORS)}
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        device_id = request.user.device.pk
        event, created = device_event_report(
            device_id=device_id,
            actor=Actor(type=ActorType.DEVICE, id=str(device_id), ip=client_ip(request)),
            **data.validated_data,
        )
        return Response(self.OutputSerializer({"event_id": event.event_id, "stored": created}).data)


class DeviceFcmTokenApi(DeviceApi):
    """POST /api/agent/v1/fcm-token : the phone's push token changed."""

    class InputSerializer(serializers.Serializer):
        fcm_token = serializers.CharField(
            max_length=512, required=False, help_text="FCM registration token"
        )
        fid = serializers.CharField(
            max_length=512, required=False, help_text="Firebase installation id"
        )

        def validate(self, attrs: dict) -> dict:  # type: ignore[type-arg]  # DRF's attrs
            if ("fcm_token" in attrs) == ("fid" in attrs):
                raise serializers.ValidationError("Send exactly one of fcm_token and fid.")
            return attrs

    class OutputSerializer(serializers.Serializer):
        updated = serializers.BooleanField()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer, **error_responses(*AGENT_ERRORS)}
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        device_id = request.user.device.pk
        values = data.validated_data
        device_fcm_token_set(
            device_id=device_id,
            fcm_token=values.get("fid") or values["fcm_token"],
            kind="fid" if "fid" in values else "token",
            actor=Actor(type=ActorType.DEVICE, id=str(device_id), ip=client_ip(request)),
        )
        return Response(self.OutputSerializer({"updated": True}).data)


class DeviceNoticesAckApi(DeviceApi):
    """POST /api/agent/v1/notices/ack : the phone showed these notices (a repeat is harmless)."""

    class InputSerializer(serializers.Serializer):
        ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=100)

    class OutputSerializer(serializers.Serializer):
        acknowledged = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer, **error_responses(*AGENT_ERRORS)}
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = notices_ack(loan_id=request.user.device.loan_id, ids=data.validated_data["ids"])
        return Response(self.OutputSerializer({"acknowledged": count}).data)


class DeviceCustomerLinkApi(DeviceApi):
    """POST /api/agent/v1/customer-link : a link that logs the phone's customer in to their
    pages once, within 5 minutes; the agent opens it in the browser (always allowed)."""

    class OutputSerializer(serializers.Serializer):
        url = serializers.URLField()
        expires_in = serializers.IntegerField(help_text="seconds")

    @extend_schema(
        request=None, responses={200: OutputSerializer, **error_responses(401, 413, 429)}
    )
    def post(self, request: Request) -> Response:
        device = request.user.device
        loan = device.loan
        token = customer_login_link_mint(
            customer_id=loan.customer_id,
            lender_id=device.lender_id,
            actor=Actor(type=ActorType.DEVICE, id=str(device.pk), ip=client_ip(request)),
        )
        path = reverse("customers:link", kwargs={"lender_slug": loan.lender.slug, "token": token})
        return Response(
            self.OutputSerializer(
                {
                    "url": request.build_absolute_uri(path),
                    "expires_in": int(LOGIN_LINK_TTL.total_seconds()),
                }
            ).data
        )
