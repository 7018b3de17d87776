from django.urls import path

from apps.notifications.api.views import MessagingCallbackApi, WhatsAppWebhookApi

app_name = "messaging-api"

urlpatterns = [
    path(
        "africastalking/<str:lender_slug>/<str:token>/<str:route>/",
        MessagingCallbackApi.as_view(),
        {"provider": "africastalking"},
        name="africastalking",
    ),
    path(
        "twilio/<str:lender_slug>/<str:route>/",
        MessagingCallbackApi.as_view(),
        {"provider": "twilio"},
        name="twilio",
    ),
    path(
        "whatsapp/<str:lender_slug>/",
        WhatsAppWebhookApi.as_view(),
        {"provider": "whatsapp"},
        name="whatsapp",
    ),
]
