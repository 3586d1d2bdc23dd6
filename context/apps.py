from django.apps import AppConfig


class ContextConfig(AppConfig):
    """Context providers fetched and injected into runs (the context issue)."""

    name = "context"
