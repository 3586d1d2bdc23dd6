"""`manage.py span_sink`: own the embedded trace store; move routed spans into it and answer
trace queries, until SIGTERM or Ctrl-C (`up` runs it as one of its processes)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tracing import migrate, store
from tracing.conf import tracing_settings
from tracing.sink import Sink


class Command(BaseCommand):
    help = "Run the span sink of the embedded topology (the one process that opens the chDB directory)."

    def handle(self, *args: Any, **options: Any) -> None:
        if store.is_local():
            raise CommandError("CLICKHOUSE_URL is set: every process writes to ClickHouse itself; no sink is needed.")
        store.open_embedded()
        applied = migrate.apply()
        if applied:
            self.stdout.write(f"span sink: applied {', '.join(applied)}")
        sink = Sink(insert_every=tracing_settings().SINK_INTERVAL)

        def stop(signum: int, frame: FrameType | None) -> None:
            sink.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        self.stdout.write(f"span sink: serving {store.embedded_path()}")
        self.stdout.flush()
        try:
            sink.run()
        finally:
            store.close()
