from django.urls import path

from apps.selfservice import views

app_name = "customers"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("login/code/", views.code, name="code"),
    path("link/<str:token>/", views.link, name="link"),
    path("loans/<str:reference>/consent/", views.consent_download, name="consent"),
    path(
        "loans/<str:reference>/receipts/<int:payment_id>/", views.receipt_download, name="receipt"
    ),
    path("logout/", views.logout, name="logout"),
    path("account-reading/give/", views.account_reading_give, name="account-reading-give"),
    path("account-reading/revoke/", views.account_reading_revoke, name="account-reading-revoke"),
    path("status/", views.status, name="status"),
    path("loans/<str:reference>/pay/", views.pay, name="pay"),
    path("loans/<str:reference>/promise/", views.promise, name="promise"),
    path("loans/<str:reference>/hardship/", views.hardship, name="hardship"),
]
