"""The tracing app's knobs (`settings.TRACING`), read through one typed object."""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


@dataclass(frozen=True)
class TracingSettings:
    ENABLED: bool = True  # our spans, the Django and Celery instrumentation, the export
    SERVICE_NAME: str = "agentplatform"
    # Distributed: a ClickHouse server over HTTP, to which every process exports directly.
    CLICKHOUSE_URL: str = ""
    # Embedded (no CLICKHOUSE_URL): the in-process engine's directory. One process opens it
    # (the span sink that `up` starts); the others route spans and queries through Redis.
    CHDB_PATH: str = ""
    REDIS_URL: str = ""
    ROUTE_KEY: str = "agentplatform:spans"
    ROUTE_MAX_SPANS: int = 1_000_000  # spans waiting in Redis for the sink before new ones are dropped
    BUFFER_SPANS: int = 20_000  # spans a process holds while the store (or route) is unreachable
    BATCH_SPANS: int = 10_000  # spans per export (per insert when writing to ClickHouse directly)
    FLUSH_INTERVAL: float = 1.0  # seconds between exports of a partial batch
    SINK_INTERVAL: float = 5.0  # seconds between the span sink's inserts (fewer, larger inserts cost less)
    # Idle this long, the sink closes the embedded store (and frees its memory); 0: it opens the
    # store as it starts and keeps it open.
    SINK_IDLE_SECONDS: float = 60.0
    QUERY_TIMEOUT: float = 10.0  # seconds a trace query waits for the store
    RETENTION_DAYS: int = 30
    EXCLUDED_URLS: str = ""  # comma-separated regexes of request paths not traced


@functools.cache
def tracing_settings() -> TracingSettings:
    configured: dict[str, Any] = getattr(settings, "TRACING", {})
    known = {f.name for f in fields(TracingSettings)}
    unknown = set(configured) - known
    if unknown:
        raise ImproperlyConfigured(f"unknown TRACING settings: {', '.join(sorted(unknown))}")
    return TracingSettings(**configured)


def _reset(*, setting: str, **_: Any) -> None:
    if setting == "TRACING":
        tracing_settings.cache_clear()


setting_changed.connect(_reset)
