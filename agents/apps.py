from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        # The app registry is ready only now.
        from agents import receivers  # noqa: PLC0415
        from approvals.registry import run_hooks  # noqa: PLC0415

        run_hooks.on_decided(receivers.on_decided)  # what a decision does to the waiting run
        run_hooks.on_expired(receivers.on_expired)
        post_migrate.connect(_sync_after_migrate, sender=self)


def _sync_after_migrate(*, using: str, **_: Any) -> None:
    """Mirror the code's agents into the database whenever the schema is migrated."""
    from agents.services import sync_agents  # noqa: PLC0415  # the app registry is ready only now

    sync_agents(using=using)
