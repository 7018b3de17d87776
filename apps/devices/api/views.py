"""The agent API: what the phone calls. This slice: enrollment."""

from __future__ import annotations

import base64
import binascii

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.core.actor import Actor, ActorType, client_ip
from apps.devices.services import device_enroll


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
        fcm_token = serializers.CharField(max_length=512, allow_blank=True, default="")
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

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        enrollment = device_enroll(
            token=values["token"], imei=values["imei"], serial=values["serial"], model_name=values["model"],
            android_version=values["android_version"], agent_version=values["agent_version"],
            fcm_token=values["fcm_token"], agent_public_key=values["agent_public_key"],
            actor=Actor(type=ActorType.DEVICE, ip=client_ip(request)),
        )  # fmt: skip
        body = {
            "device_id": enrollment.device.pk,
            "device_secret": enrollment.device_secret,
            "lender_public_key": enrollment.lender_public_key,
            "key_version": enrollment.key_version,
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)
