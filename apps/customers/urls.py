from django.urls import path

from apps.customers import views

app_name = "customers"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("login/code/", views.code, name="code"),
    path("logout/", views.logout, name="logout"),
    path("status/", views.status, name="status"),
    path("loans/<str:reference>/pay/", views.pay, name="pay"),
    path("loans/<str:reference>/promise/", views.promise, name="promise"),
    path("loans/<str:reference>/hardship/", views.hardship, name="hardship"),
]
