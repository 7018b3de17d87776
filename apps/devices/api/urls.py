from django.urls import path

from apps.devices.api.views import DeviceEnrollApi

app_name = "agent-api"

urlpatterns = [
    path("enroll", DeviceEnrollApi.as_view(), name="enroll"),
]
