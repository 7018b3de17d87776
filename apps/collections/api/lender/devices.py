"""Phones, read and commanded by the lender's own systems.

Every command is the back office's: the same service, with the same rules (country rules,
pauses, consent, the suspension switch, the two-person rule of a manual lock), and a reason
the audit keeps. There is no release: a phone is released only by payoff.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.collections.api.lender.base import READ_ERRORS, paginated
from apps.collections.services import (
    loan_hardship_request,
    loan_manual_lock_request,
    loan_promise_record,
    loan_reminder_resend,
    loan_stage_lift,
)
from apps.core.api.fields import PlainDecimalField
from apps.core.api.pagination import PAGE_PARAMETERS, page_of
from apps.core.api.schema import error_responses
from apps.core.money import Money
from apps.devices.models import Device, DeviceEvent
from apps.devices.selectors import (
    device_event_list_reported,
    device_get_for_lender,
    device_list_for_lender,
    device_state_for_lender,
)
from apps.devices.services import offline_code_resend
from apps.lenders.api.auth import LenderApiMixin, actor_of, lender_id_of
from apps.lenders.models import ApiKey

DEVICES_READ = {ApiKey.Scope.DEVICES_READ.value}
DEVICES_COMMAND = {ApiKey.Scope.DEVICES_COMMAND.value}
COMMAND_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429)


class DeviceOutput(serializers.Serializer[Device]):
    id = serializers.IntegerField()
    loan_id = serializers.IntegerField()
    imei = serializers.CharField()
    status = serializers.CharField()
    desired_level = serializers.CharField(source="level", allow_null=True)
    desired_version = serializers.IntegerField()
    acknowledged_version = serializers.IntegerField(source="acked_version")
    acknowledged_at = serializers.DateTimeField(source="acked_at", allow_null=True)
    in_sync = serializers.SerializerMethodField()
    sync_lag_seconds = serializers.SerializerMethodField()
    last_check_in = serializers.DateTimeField(source="last_seen_at", allow_null=True)
    offline_lease_until = serializers.DateTimeField(source="lease_until", allow_null=True)

    def get_in_sync(self, device: Device) -> bool:
        return device.acked_version >= device.desired_version

    def get_sync_lag_seconds(self, device: Device) -> int | None:
        lag = getattr(device, "sync_lag", None)
        return None if lag is None else int(lag.total_seconds())


class EventOutput(serializers.Serializer[DeviceEvent]):
    kind = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class DeviceListApi(LenderApiMixin, APIView):
    """The lender's phones, newest first, optionally of one loan."""

    required_scopes = DEVICES_READ

    class FilterSerializer(serializers.Serializer[dict[str, Any]]):
        loan_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)

    @extend_schema(
        operation_id="lender_devices_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: page_of(DeviceOutput), **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        devices = device_list_for_lender(lender_id=lender_id_of(request), **filters.validated_data)
        return paginated(request, self, devices, DeviceOutput)


class DeviceDetailApi(LenderApiMixin, APIView):
    """A phone's state: what it should show (desired level and version), what it
    acknowledged, when it last checked in, its offline lease, how long it has been behind,
    and its newest SIM-change and tamper reports."""

    required_scopes = DEVICES_READ

    class OutputSerializer(DeviceOutput):
        events = serializers.SerializerMethodField()

        @extend_schema_field(EventOutput(many=True))
        def get_events(self, device: Device) -> list[dict[str, Any]]:
            events = device_event_list_reported(device=device)
            return [EventOutput(event).data for event in events]

    @extend_schema(
        operation_id="lender_devices_read",
        responses={200: OutputSerializer, **error_responses(401, 403, 404, 413, 429)},
    )
    def get(self, request: Request, device_id: int) -> Response:
        # the body OutputSerializer describes, built as a plain dict: on every call, DRF's
        # field machinery cost more than the statement (tests/collections/test_api_lender.py
        # holds the two to the same answer)
        phone = device_state_for_lender(lender_id=lender_id_of(request), device_id=device_id)
        lag = phone.sync_lag
        return Response(
            {
                "id": phone.id,
                "loan_id": phone.loan_id,
                "imei": phone.imei,
                "status": phone.status,
                "desired_level": phone.level,
                "desired_version": phone.desired_version,
                "acknowledged_version": phone.acked_version,
                "acknowledged_at": _time(phone.acked_at),
                "in_sync": phone.acked_version >= phone.desired_version,
                "sync_lag_seconds": None if lag is None else int(lag.total_seconds()),
                "last_check_in": _time(phone.last_seen_at),
                "offline_lease_until": _time(phone.lease_until),
                "events": [{"kind": kind, "occurred_at": _time(at)} for kind, at in phone.events],
            }
        )


_DATETIME = serializers.DateTimeField()


def _time(value: datetime | None) -> str | None:
    """A time as the serializers write it (DRF's format), or None."""
    return None if value is None else _DATETIME.to_representation(value)


class CommandOutput(serializers.Serializer[dict[str, Any]]):
    device_id = serializers.IntegerField()
    loan_id = serializers.IntegerField()
    command = serializers.CharField()
    status = serializers.CharField(help_text="What became of it: the stage, or the request's.")
    request_id = serializers.IntegerField(allow_null=True, required=False)


class _Command(LenderApiMixin, APIView):
    """A command on a phone's loan, with a reason."""

    required_scopes = DEVICES_COMMAND
    command = ""

    class InputSerializer(serializers.Serializer[dict[str, Any]]):
        reason = serializers.CharField(max_length=500)

    def post(self, request: Request, device_id: int) -> Response:
        device = device_get_for_lender(lender_id=lender_id_of(request), device_id=device_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result, request_id, accepted = self.run(request, device, data.validated_data)
        body = {
            "device_id": device.pk,
            "loan_id": device.loan_id,
            "command": self.command,
            "status": result,
            "request_id": request_id,
        }
        return Response(
            CommandOutput(body).data,
            status=status.HTTP_202_ACCEPTED if accepted else status.HTTP_200_OK,
        )

    def run(
        self, request: Request, device: Device, values: dict[str, Any]
    ) -> tuple[str, int | None, bool]:
        raise NotImplementedError

    @staticmethod
    def common(request: Request, device: Device, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "loan_id": device.loan_id,
            "lender_id": device.lender_id,
            "actor": actor_of(request),
            "reason": values["reason"],
        }


def _command_schema(operation_id: str, request: Any, description: str) -> Any:
    return extend_schema(
        operation_id=operation_id,
        request=request,
        responses={200: CommandOutput, 202: CommandOutput, **error_responses(*COMMAND_ERRORS)},
        description=description,
    )


class DeviceLiftApi(_Command):
    command = "lift"

    @_command_schema(
        "lender_devices_lift",
        _Command.InputSerializer,
        "Lift the loan's restriction now, until the next morning's sweep finds it still late.",
    )
    def post(self, request: Request, device_id: int) -> Response:
        return super().post(request, device_id)

    def run(self, request: Request, device: Device, values: dict[str, Any]) -> Any:
        return loan_stage_lift(**self.common(request, device, values)), None, False


class DevicePromiseApi(_Command):
    command = "promise"

    class InputSerializer(_Command.InputSerializer):
        until = serializers.DateField(help_text="The lender's date the customer will pay by.")
        amount = PlainDecimalField(max_digits=18, decimal_places=3, required=False)

    @_command_schema(
        "lender_devices_promise",
        InputSerializer,
        "Record the customer's promise to pay by `until`: escalation stops until then.",
    )
    def post(self, request: Request, device_id: int) -> Response:
        return super().post(request, device_id)

    def run(self, request: Request, device: Device, values: dict[str, Any]) -> Any:
        amount = values.get("amount")
        pause = loan_promise_record(
            until=values["until"],
            amount=Money(amount, device.loan.currency) if amount is not None else None,
            **self.common(request, device, values),
        )
        return pause.status, pause.pk, False


class DeviceHardshipPauseApi(_Command):
    command = "hardship_pause"

    class InputSerializer(_Command.InputSerializer):
        until = serializers.DateField()

    @_command_schema(
        "lender_devices_hardship_pause",
        InputSerializer,
        "Ask for a hardship pause until `until`: a supervisor decides in the back office (202).",
    )
    def post(self, request: Request, device_id: int) -> Response:
        return super().post(request, device_id)

    def run(self, request: Request, device: Device, values: dict[str, Any]) -> Any:
        pause = loan_hardship_request(until=values["until"], **self.common(request, device, values))
        return pause.status, pause.pk, True


class DeviceManualLockApi(_Command):
    command = "manual_lock"

    @_command_schema(
        "lender_devices_manual_lock",
        _Command.InputSerializer,
        "Ask to lock the phone now: a supervisor or the lender's admin approves it in the back "
        "office (202), as for an agent's request.",
    )
    def post(self, request: Request, device_id: int) -> Response:
        return super().post(request, device_id)

    def run(self, request: Request, device: Device, values: dict[str, Any]) -> Any:
        ask = loan_manual_lock_request(user=None, **self.common(request, device, values))
        return ask.status, ask.pk, True


class DeviceMessageApi(_Command):
    command = "message"

    @_command_schema(
        "lender_devices_message",
        _Command.InputSerializer,
        "Send the customer their reminder now (how late, what happens next), under the contact "
        "rules (hours, weekly limit).",
    )
    def post(self, request: Request, device_id: int) -> Response:
        return super().post(request, device_id)

    def run(self, request: Request, device: Device, values: dict[str, Any]) -> Any:
        return loan_reminder_resend(**self.common(request, device, values)), None, False


class DeviceUnlockCodeResendApi(_Command):
    command = "unlock_code_resend"

    @_command_schema(
        "lender_devices_unlock_code_resend",
        _Command.InputSerializer,
        "Send the phone's newest offline unlock code to the customer again by SMS.",
    )
    def post(self, request: Request, device_id: int) -> Response:
        return super().post(request, device_id)

    def run(self, request: Request, device: Device, values: dict[str, Any]) -> Any:
        code = offline_code_resend(
            device_id=device.pk,
            lender_id=device.lender_id,
            actor=actor_of(request),
            reason=values["reason"],
        )
        return f"sent #{code.count}", None, False
