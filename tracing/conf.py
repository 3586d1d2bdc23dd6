"""The tracing app's knobs (`settings.TRACING`), read through one typed object.

The defaults are here and nowhere else. Each field's metadata names its environment variable
(`env`), the least value it takes (`minimum`) and what it means (`help`): `settings.py` passes
only what the environment sets (`agentplatform.appsettings.from_environment`), and the
configuration reference in the docs is generated from them (`scripts/config_reference.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentplatform.appsettings import AppSettings


@dataclass(frozen=True)
class TracingSettings:
    ENABLED: bool = field(
        default=True,
        metadata={
            "env": "AGENTPLATFORM_TRACING",
            "help": (
                "spans for requests, runs, model and tool calls (with the Django and Celery "
                "instrumentation), stored in ClickHouse"
            ),
        },
    )
    SERVICE_NAME: str = field(
        default="agentplatform",
        metadata={"env": "OTEL_SERVICE_NAME", "help": "the `service.name` of the platform's spans"},
    )
    CLICKHOUSE_URL: str = field(
        default="",
        metadata={
            "env": "CLICKHOUSE_URL",
            "help": "`http(s)://user:pass@host:8123/database`: every process writes and reads spans there",
            "default": "(none: embedded chDB)",
        },
    )
    CHDB_PATH: str = field(
        default="",
        metadata={
            "env": "AGENTPLATFORM_CHDB_PATH",
            "help": (
                "the embedded trace store's directory, opened by the span sink that `up` starts; the other "
                "processes route spans and queries through Redis"
            ),
            "default": "`<data dir>/clickhouse`",
        },
    )
    REDIS_URL: str = field(
        default="",
        metadata={"help": "the Redis that routes spans and queries to the span sink", "default": "`REDIS_URL`"},
    )
    ROUTE_KEY: str = field(
        default="agentplatform:spans", metadata={"help": "the Redis list that carries spans to the span sink"}
    )
    ROUTE_MAX_SPANS: int = field(
        default=1_000_000,
        metadata={
            "env": "AGENTPLATFORM_TRACE_ROUTE_MAX_SPANS",
            "minimum": 1,
            "help": "spans waiting in Redis for the span sink before senders keep theirs",
        },
    )
    BUFFER_SPANS: int = field(
        default=20_000,
        metadata={
            "env": "AGENTPLATFORM_TRACE_BUFFER_SPANS",
            "minimum": 1,
            "help": "spans a process keeps while the store (or the route) is unreachable; more are dropped and counted",
        },
    )
    BATCH_SPANS: int = field(
        default=10_000, metadata={"help": "spans per export (per insert when writing to ClickHouse directly)"}
    )
    FLUSH_INTERVAL: float = field(
        default=1.0,
        metadata={
            "env": "AGENTPLATFORM_TRACE_FLUSH_INTERVAL",
            "minimum": 0.01,
            "help": "seconds between exports of a partial batch",
        },
    )
    SINK_INTERVAL: float = field(
        default=5.0,
        metadata={
            "env": "AGENTPLATFORM_TRACE_SINK_INTERVAL",
            "minimum": 0.01,
            "help": "seconds between the span sink's inserts (sooner under load): how fresh the embedded viewer is",
        },
    )
    SINK_IDLE_SECONDS: float = field(
        default=60.0,
        metadata={
            "env": "AGENTPLATFORM_TRACE_SINK_IDLE_SECONDS",
            "help": (
                "seconds with no spans and no query after which the span sink closes the embedded store and "
                "frees its memory (`0`: open it at start and keep it open)"
            ),
        },
    )
    QUERY_TIMEOUT: float = field(default=10.0, metadata={"help": "seconds a trace query waits for the store"})
    RETENTION_DAYS: int = field(
        default=30,
        metadata={
            "env": "AGENTPLATFORM_TRACE_RETENTION_DAYS",
            "help": (
                "spans and traces older than this are dropped by ClickHouse (a TTL, set by `migrate_clickhouse` "
                "and the span sink's start). 0: kept forever"
            ),
        },
    )
    EXCLUDED_URLS: str = field(
        default="",
        metadata={
            "help": (
                "comma-separated regexes of request paths not traced (`OTEL_PYTHON_DJANGO_EXCLUDED_URLS` wins when set)"
            ),
            "default": "static files, the health checks, the admin, the trace API",
        },
    )


tracing_settings = AppSettings(TracingSettings, "TRACING")
