from django.apps import AppConfig


class SelfserviceConfig(AppConfig):
    """The customer's own pages: an interface over the customers and collections apps."""

    name = "apps.selfservice"
    label = "selfservice"
