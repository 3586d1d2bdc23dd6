from django.apps import AppConfig


class TracingConfig(AppConfig):
    """OpenTelemetry set-up, the ClickHouse span store, and the trace viewer."""

    name = "tracing"
    verbose_name = "Tracing"

    def ready(self) -> None:
        from tracing import setup  # noqa: PLC0415  # needs the app registry (settings, celery app)

        setup.connect_worker_hooks()
        setup.install()
