from django.apps import AppConfig


class CounterConfig(AppConfig):
    """The clerk's pages at the counter: an interface over the retailers and collections apps."""

    name = "apps.counter"
    label = "counter"
