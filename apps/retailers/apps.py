from django.apps import AppConfig


class RetailersConfig(AppConfig):
    name = "apps.retailers"
    label = "retailers"
