from django.apps import AppConfig

from apps.core.audit import audit_append_listen


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"

    def ready(self) -> None:
        from apps.integrations import checks  # noqa: F401  (registers the deploy checks)
        from apps.integrations.services.webhooks import webhooks_nudge

        # a change that appends a public event to a chain nudges the webhooks' dispatcher
        audit_append_listen(webhooks_nudge)
