"""/api/lender/v1/: the lender API (README "Lender API")."""

from django.urls import path

from apps.collections.api.lender.devices import (
    DeviceDetailApi,
    DeviceHardshipPauseApi,
    DeviceLiftApi,
    DeviceListApi,
    DeviceManualLockApi,
    DeviceMessageApi,
    DevicePromiseApi,
    DeviceUnlockCodeResendApi,
)
from apps.collections.api.lender.events import EventListApi
from apps.collections.api.lender.loans import LoanDetailApi, LoanEnrollmentCodeApi, LoanListApi
from apps.collections.api.lender.payments import PaymentListApi, PaymentReversalCreateApi
from apps.collections.api.lender.webhooks import (
    WebhookDeliveryListApi,
    WebhookDeliveryResendApi,
    WebhookEndpointDetailApi,
    WebhookEndpointListApi,
    WebhookEndpointSecretRotateApi,
)

app_name = "lender-api"

urlpatterns = [
    path("loans", LoanListApi.as_view(), name="loans"),
    path("loans/<int:loan_id>", LoanDetailApi.as_view(), name="loan"),
    path(
        "loans/<int:loan_id>/enrollment-code",
        LoanEnrollmentCodeApi.as_view(),
        name="loan-enrollment-code",
    ),
    path("payments", PaymentListApi.as_view(), name="payments"),
    path("payments/reversals", PaymentReversalCreateApi.as_view(), name="payment-reversals"),
    path("events", EventListApi.as_view(), name="events"),
    path("devices", DeviceListApi.as_view(), name="devices"),
    path("devices/<int:device_id>", DeviceDetailApi.as_view(), name="device"),
    path("devices/<int:device_id>/lift", DeviceLiftApi.as_view(), name="device-lift"),
    path("devices/<int:device_id>/promise", DevicePromiseApi.as_view(), name="device-promise"),
    path(
        "devices/<int:device_id>/hardship-pause",
        DeviceHardshipPauseApi.as_view(),
        name="device-hardship-pause",
    ),
    path(
        "devices/<int:device_id>/manual-lock",
        DeviceManualLockApi.as_view(),
        name="device-manual-lock",
    ),
    path("devices/<int:device_id>/message", DeviceMessageApi.as_view(), name="device-message"),
    path(
        "devices/<int:device_id>/unlock-code/resend",
        DeviceUnlockCodeResendApi.as_view(),
        name="device-unlock-code-resend",
    ),
    path("webhooks/endpoints", WebhookEndpointListApi.as_view(), name="webhook-endpoints"),
    path(
        "webhooks/endpoints/<int:endpoint_id>",
        WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint",
    ),
    path(
        "webhooks/endpoints/<int:endpoint_id>/secret-rotation",
        WebhookEndpointSecretRotateApi.as_view(),
        name="webhook-endpoint-secret-rotation",
    ),
    path(
        "webhooks/endpoints/<int:endpoint_id>/deliveries",
        WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/deliveries/<int:delivery_id>/resend",
        WebhookDeliveryResendApi.as_view(),
        name="webhook-delivery-resend",
    ),
]
