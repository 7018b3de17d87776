from django.apps import AppConfig

from apps.notifications.channels import PhoneChannel, phone_channel_install


class DevicesConfig(AppConfig):
    name = "apps.devices"
    label = "devices"

    def ready(self) -> None:
        # Imported in ready(), where Django says to register checks: the module registers
        # its deploy checks on import, once the app registry is loaded.
        from apps.devices import checks  # noqa: F401

        # imported here because Django loads models only once the app registry is ready
        from apps.devices.selectors import device_ids_pushable_for_loans
        from apps.devices.services import push_nudges_current_enqueue

        # notifications (below devices) delivers notices through the phone with these
        phone_channel_install(
            PhoneChannel(pushable=device_ids_pushable_for_loans, nudge=push_nudges_current_enqueue)
        )
