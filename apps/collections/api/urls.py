from django.urls import path

from apps.collections.api.views import (
    DarajaCallbackApi,
    PaymentWebhookApi,
    SignedProviderWebhookApi,
)

app_name = "payments-api"

urlpatterns = [
    path("webhooks/<slug:provider>/", PaymentWebhookApi.as_view(), name="webhook"),
    # Daraja refuses callback addresses with "mpesa" in them
    path(
        "daraja/<slug:lender_slug>/<str:token>/<slug:route>/",
        DarajaCallbackApi.as_view(),
        name="daraja",
    ),
    path(
        "providers/<slug:provider>/<slug:lender_slug>/",
        SignedProviderWebhookApi.as_view(),
        name="provider",
    ),
]
