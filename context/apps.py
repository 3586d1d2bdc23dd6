from django.apps import AppConfig


class ContextConfig(AppConfig):
    """Context providers: sources bound to agents, fetched and injected before each run."""

    name = "context"
    verbose_name = "Context"

    def ready(self) -> None:
        # The app registry is ready only now; agents calls this app through its registry.
        from agents.extensions import run_preparers  # noqa: PLC0415
        from context.services import prepare_run  # noqa: PLC0415

        run_preparers.register(prepare_run)
