from django.urls import path

from apps.notifications.api.views import MessagingCallbackApi

app_name = "messaging-api"

urlpatterns = [
    path(
        "africastalking/<slug:lender_slug>/<str:token>/<str:route>/",
        MessagingCallbackApi.as_view(),
        {"provider": "africastalking"},
        name="africastalking",
    ),
    path(
        "twilio/<slug:lender_slug>/<str:route>/",
        MessagingCallbackApi.as_view(),
        {"provider": "twilio"},
        name="twilio",
    ),
    path(
        "whatsapp/<slug:lender_slug>/",
        MessagingCallbackApi.as_view(),
        {"provider": "whatsapp"},
        name="whatsapp",
    ),
]
