from django.urls import path

from apps.counter import views

app_name = "pos"

urlpatterns = [
    path("login/", views.ClerkLoginView.as_view(), name="login"),
    path("logout/", views.pos_logout, name="logout"),
    path("", views.home, name="home"),
    path("sales/<uuid:public_id>/customer/", views.customer, name="customer"),
    path("sales/<uuid:public_id>/phone/", views.phone, name="phone"),
    path("phone-model/", views.phone_model, name="phone_model"),
    path("sales/<uuid:public_id>/plan/", views.plan, name="plan"),
    path("sales/<uuid:public_id>/plan/quote/", views.plan_quote, name="plan_quote"),
    path("sales/<uuid:public_id>/consent/", views.consent, name="consent"),
    path("sales/<uuid:public_id>/sign/", views.sign, name="sign"),
    path("sales/<uuid:public_id>/provision/", views.provision, name="provision"),
    path("sales/<uuid:public_id>/status/", views.status, name="status"),
    path("sales/<uuid:public_id>/receipt/", views.receipt, name="receipt"),
]
