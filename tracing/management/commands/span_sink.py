"""`manage.py span_sink`: own the embedded trace store; move routed spans into it and answer
trace queries, until SIGTERM or Ctrl-C. (`up` runs the same sink as `python -m tracing.sink`,
which loads no Django app.)"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tracing import sink
from tracing.errors import StoreUnavailable


class Command(BaseCommand):
    help = "Run the span sink of the embedded topology (the one process that opens the chDB directory)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sink.serve()
        except StoreUnavailable as exc:
            raise CommandError(str(exc)) from exc
