from django.apps import AppConfig

from apps.notifications.channels import PhoneChannel, phone_channel_install


class DevicesConfig(AppConfig):
    name = "apps.devices"
    label = "devices"

    def ready(self) -> None:
        from apps.devices import checks  # noqa: F401  (registers the deploy checks)

        # imported here because Django loads models only once the app registry is ready
        from apps.devices.selectors import device_ids_pushable_for_loans
        from apps.devices.services import push_nudges_current_enqueue

        # notifications (below devices) delivers notices through the phone with these
        phone_channel_install(
            PhoneChannel(pushable=device_ids_pushable_for_loans, nudge=push_nudges_current_enqueue)
        )
