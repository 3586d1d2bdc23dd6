"""`manage.py purge_expired [--dry-run]`: apply retention once, as beat's job does, and print the counts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from agentplatform.conf import platform_settings
from agents import services


class Command(BaseCommand):
    help = (
        "Delete sessions, run events, webhook deliveries and schedule firings past their retention "
        "(AGENTPLATFORM_*_RETENTION_DAYS), in batches; --dry-run counts them and deletes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        conf = platform_settings()
        kept = {
            "sessions": conf.SESSION_RETENTION_DAYS,
            "run events": conf.RUN_EVENT_RETENTION_DAYS,
            "webhook deliveries": conf.WEBHOOK_DELIVERY_RETENTION_DAYS,
            "schedule firings": conf.SCHEDULE_FIRING_RETENTION_DAYS,
        }
        self.stdout.write(
            "Retention: " + ", ".join(f"{what} {f'{days} days' if days else 'forever'}" for what, days in kept.items())
        )
        deleted = services.purge_expired(dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        if not deleted:
            self.stdout.write(f"{verb} nothing: no row is past its retention.")
        for label, count in deleted.items():
            self.stdout.write(f"{verb} {count} {label}")
