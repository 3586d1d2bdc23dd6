from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        from agents import receivers  # noqa: F401, PLC0415  # reacts to approval decisions
        from agents.api import schema  # noqa: F401, PLC0415  # registers the OpenAPI auth scheme

        post_migrate.connect(_sync_after_migrate, sender=self)


def _sync_after_migrate(*, using: str, **_: Any) -> None:
    """Mirror the code's agents into the database whenever the schema is migrated."""
    from agents.services import sync_agents  # noqa: PLC0415  # the app registry is ready only now

    sync_agents(using=using)
