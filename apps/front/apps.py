from django.apps import AppConfig


class FrontConfig(AppConfig):
    """The site's front door and its error pages: an interface over every app."""

    name = "apps.front"
    label = "front"
