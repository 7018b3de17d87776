from django.apps import AppConfig

from apps.core.audit import audit_recorder_install


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        """Install the recorder that the apps below this one record their events through."""
        # imported here because Django loads models only once the app registry is ready
        from apps.audit.services import AuditEventRecorder

        audit_recorder_install(AuditEventRecorder())
