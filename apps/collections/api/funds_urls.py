from django.urls import path

from apps.collections.api.funds import FundsAlertApi, PlaidWebhookApi

app_name = "funds-api"

urlpatterns = [
    path("alerts", FundsAlertApi.as_view(), name="alerts"),
    path("plaid/<slug:lender_slug>/", PlaidWebhookApi.as_view(), name="plaid"),
]
