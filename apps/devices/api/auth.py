"""Per-device credentials for the agent API: ``Authorization: Device <id>:<secret>``."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from apps.devices.models import Device
from apps.devices.services import device_authenticate


class DevicePrincipal:
    """``request.user`` for the agent API: the phone, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = is_superuser = False

    def __init__(self, device: Device) -> None:
        self.device = device
        self.pk = f"device-{device.pk}"  # the throttles key on it: one bucket per phone

    def __str__(self) -> str:
        return f"device {self.device.pk}"


class DeviceAuthentication(authentication.BaseAuthentication):
    keyword = "Device"

    def authenticate(self, request: Any) -> tuple[DevicePrincipal, None] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(f"{self.keyword} "):
            return None
        device_id, _, secret = header[len(self.keyword) + 1 :].partition(":")
        if not re.fullmatch(r"[0-9]{1,18}", device_id) or not secret:
            raise exceptions.AuthenticationFailed("Malformed device credentials.")
        device = device_authenticate(device_id=int(device_id), secret=secret)
        if device is None:
            raise exceptions.AuthenticationFailed("Unknown device or wrong secret.")
        return DevicePrincipal(device), None

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class IsDevice(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.user, DevicePrincipal)


class DeviceAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.devices.api.auth.DeviceAuthentication"
    name = "deviceAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Device <device id>:<device secret>",
        }
