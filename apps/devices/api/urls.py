from django.urls import path

from apps.devices.api.views import (
    DeviceAckApi,
    DeviceCheckInApi,
    DeviceCustomerLinkApi,
    DeviceEnrollApi,
    DeviceEventsApi,
    DeviceFcmTokenApi,
    DeviceNoticesAckApi,
)

app_name = "agent-api"

urlpatterns = [
    path("enroll", DeviceEnrollApi.as_view(), name="enroll"),
    path("check-in", DeviceCheckInApi.as_view(), name="check-in"),
    path("ack", DeviceAckApi.as_view(), name="ack"),
    path("events", DeviceEventsApi.as_view(), name="events"),
    path("fcm-token", DeviceFcmTokenApi.as_view(), name="fcm-token"),
    path("notices/ack", DeviceNoticesAckApi.as_view(), name="notices-ack"),
    path("customer-link", DeviceCustomerLinkApi.as_view(), name="customer-link"),
]
