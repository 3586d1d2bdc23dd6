"""`manage.py migrate_clickhouse`: apply the span store's migrations (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tracing import migrate, store
from tracing.errors import StoreUnavailable


class Command(BaseCommand):
    help = "Create or update the trace store's tables in ClickHouse (CLICKHOUSE_URL, or the embedded engine)."

    def handle(self, *args: Any, **options: Any) -> None:
        opened = not store.is_local()
        if opened:  # embedded: this process opens the engine for the time it migrates
            try:
                store.open_embedded()
            except StoreUnavailable as exc:
                raise CommandError(
                    f"{exc.message} If `manage.py up` is running, it applied the migrations when it started."
                ) from exc
        try:
            applied = migrate.apply()
        except StoreUnavailable as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if opened:
                store.close()
        if options["verbosity"]:
            self.stdout.write(f"Applied: {', '.join(applied)}" if applied else "No ClickHouse migrations to apply.")
