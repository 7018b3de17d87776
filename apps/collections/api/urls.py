from django.urls import path

from apps.collections.api.views import PaymentWebhookApi

app_name = "payments-api"

urlpatterns = [
    path("webhooks/<slug:provider>/", PaymentWebhookApi.as_view(), name="webhook"),
]
