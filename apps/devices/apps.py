from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "apps.devices"
    label = "devices"

    def ready(self) -> None:
        from apps.devices import checks  # noqa: F401  (registers the deploy checks)
