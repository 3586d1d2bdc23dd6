from django.apps import AppConfig


class TracingConfig(AppConfig):
    """OpenTelemetry set-up and the ClickHouse span store (the tracing issue)."""

    name = "tracing"
