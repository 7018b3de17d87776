from django.urls import path

from apps.notifications.api.views import VoiceCallbackApi

app_name = "voice-api"

urlpatterns = [
    path(
        "twilio/<str:lender_slug>/<str:call_id>/<str:route>/",
        VoiceCallbackApi.as_view(),
        name="twilio",
    ),
]
