from django.apps import AppConfig


class ContextConfig(AppConfig):
    """Context providers: sources bound to agents, fetched and injected before each run."""

    name = "context"
    verbose_name = "Context"
