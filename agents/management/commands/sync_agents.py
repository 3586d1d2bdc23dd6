"""`manage.py sync_agents`: mirror the configured code agents into the database."""

from typing import Any

from django.core.management.base import BaseCommand

from agents import services


class Command(BaseCommand):
    help = "Create or update agent and tool rows from AGENTPLATFORM_AGENTS (runs after migrate too)."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = services.sync_agents()
        self.stdout.write(f"{summary['agents']} agents synced, {summary['retired']} no longer in code.")
