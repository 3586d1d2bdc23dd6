from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "agentplatform.audit"
    label = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Sign-ins are reported by Django's and django-axes' signals, which this app is listed
        # after (INSTALLED_APPS): axes has counted a failure when the receiver reads its verdict.
        from agentplatform.audit import receivers  # noqa: F401, PLC0415
