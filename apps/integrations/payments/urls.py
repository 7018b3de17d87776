from django.urls import path

from apps.integrations.payments import views

app_name = "fake-checkout"

urlpatterns = [path("checkout/<str:token>/", views.checkout_page, name="page")]
