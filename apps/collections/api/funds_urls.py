from django.urls import path

from apps.collections.api.funds import FundsAlertApi

app_name = "funds-api"

urlpatterns = [path("alerts", FundsAlertApi.as_view(), name="alerts")]
