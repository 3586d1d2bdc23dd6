"""The platform's own knobs (`settings.AGENTPLATFORM`), read through one typed object.

The defaults are here and nowhere else. Each field's metadata names its environment variable
(`env`), the least value it takes (`minimum`) and what it means (`help`): `settings.py` passes
only what the environment sets (`agentplatform.appsettings.from_environment`), and the
configuration reference in the docs is generated from them (`scripts/config_reference.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentplatform.appsettings import AppSettings


@dataclass(frozen=True)
class PlatformSettings:
    AGENTS: list[str] = field(
        default_factory=lambda: ["agentplatform.demo:agent"],
        metadata={
            "env": "AGENTPLATFORM_AGENTS",
            "help": (
                "agents to serve, comma-separated references (`module:attr` or `file.py:attr`; an attribute "
                "may hold a list)"
            ),
            "default": "`agentplatform.demo:agent` (the built-in demo)",
        },
    )
    MAX_INPUT_CHARS: int = field(
        default=32_000,
        metadata={
            "env": "AGENTPLATFORM_MAX_INPUT_CHARS",
            "minimum": 1,
            "help": "longer run input gets 413 `input_too_large`",
        },
    )
    MAX_STEPS: int = field(
        default=10,
        metadata={
            "env": "AGENTPLATFORM_MAX_STEPS",
            "minimum": 1,
            "help": "model calls per run before `max_steps_exceeded`",
        },
    )
    HISTORY_LIMIT: int = field(
        default=50,
        metadata={
            "env": "AGENTPLATFORM_HISTORY_LIMIT",
            "minimum": 1,
            "help": "earlier session messages sent to the model",
        },
    )
    TOOL_TIMEOUT: float = field(
        default=30.0,
        metadata={
            "env": "AGENTPLATFORM_TOOL_TIMEOUT",
            "minimum": 0.001,
            "help": "seconds per tool call (a tool's own `timeout` wins)",
        },
    )
    MODEL_TIMEOUT: float = field(
        default=60.0,
        metadata={"env": "AGENTPLATFORM_MODEL_TIMEOUT", "minimum": 0.001, "help": "seconds per provider request"},
    )
    MODEL_MAX_RETRIES: int = field(
        default=2,
        metadata={"env": "AGENTPLATFORM_MODEL_MAX_RETRIES", "help": "retries of timeouts, 429 and 5xx, with backoff"},
    )
    RUN_WAIT_SECONDS: float = field(
        default=60.0,
        metadata={
            "env": "AGENTPLATFORM_RUN_WAIT_SECONDS",
            "help": "how long `POST .../runs/` waits for the finished run before answering 202",
        },
    )
    RUN_LEASE_SECONDS: float = field(
        default=60.0,
        metadata={
            "env": "AGENTPLATFORM_RUN_LEASE_SECONDS",
            "minimum": 1.0,
            "help": "a run whose worker has not renewed its lease for this long is failed by the reaper",
        },
    )
    RUN_REQUEUE_SECONDS: float = field(
        default=120.0,
        metadata={
            "env": "AGENTPLATFORM_RUN_REQUEUE_SECONDS",
            "minimum": 1.0,
            "help": "a queued run that could start but nothing took for this long is sent to the broker again",
        },
    )
    RUN_CONCURRENCY: int = field(
        default=256,
        metadata={
            "env": "AGENTPLATFORM_RUN_CONCURRENCY",
            "minimum": 1,
            "help": (
                "runs one worker process carries at once on its event loop (`up --run-concurrency`); a model "
                "provider's HTTP pool is sized from it"
            ),
        },
    )
    RUN_DB_THREADS: int = field(
        default=8,
        metadata={
            "env": "AGENTPLATFORM_RUN_DB_THREADS",
            "minimum": 1,
            "help": "a worker's threads for its runs' database steps (keep at or below `DATABASE_POOL_MAX_SIZE`)",
        },
    )
    RUN_SYNC_THREADS: int = field(
        default=32,
        metadata={
            "env": "AGENTPLATFORM_RUN_SYNC_THREADS",
            "minimum": 1,
            "help": "a worker's threads for sync tools and sync providers, and as many for sync `run()` overrides",
        },
    )
    RUN_SLOT_WAIT: float = field(
        default=5.0,
        metadata={
            "env": "AGENTPLATFORM_RUN_SLOT_WAIT",
            "help": "seconds a run's task waits for a free slot on a busy worker before going back to the broker",
        },
    )
    WORKER_DRAIN_SECONDS: float = field(
        default=30.0,
        metadata={
            "env": "AGENTPLATFORM_WORKER_DRAIN_SECONDS",
            "help": "a worker stopped with SIGTERM lets the runs it carries finish for this long",
        },
    )
    # Threads of one process share one interpreter lock: beyond a few, more runnable threads
    # only delay the event loop (accepting, refusing, streaming). Reading history on 2 cores,
    # 6 did 9% more reads per second than 10 with 100 clients, and with 10,000 clients left
    # none unanswered where 10 left thousands (bench/RESULTS.md).
    WEB_THREADS: int = field(
        default=6,
        metadata={
            "env": "AGENTPLATFORM_WEB_THREADS",
            "minimum": 1,
            "help": (
                "a web process's threads for requests' sync work (keep at or below "
                "`DATABASE_POOL_MAX_SIZE`); waiting requests hold none"
            ),
        },
    )
    WEB_DRAIN_SECONDS: float = field(
        default=10.0,
        metadata={
            "env": "AGENTPLATFORM_WEB_DRAIN_SECONDS",
            "minimum": 0.0,
            "help": (
                "a web process stopping (SIGTERM) lets its requests finish for this long: SSE streams end with a "
                "reconnect hint, requests waiting for a run get 202"
            ),
        },
    )
    WEB_QUEUE: int = field(
        default=1_000,
        metadata={
            "env": "AGENTPLATFORM_WEB_QUEUE",
            "help": (
                "requests a web process lets wait for one of those threads, first come first served; "
                "past it, a request gets 503 `overloaded` with `Retry-After` at once (a request waiting for "
                "its run holds no place: only those not yet handled count). While it refuses, a client "
                "served within the last `Retry-After` may take only half of these places"
            ),
        },
    )
    MAX_WAITERS: int = field(
        default=10_000,
        metadata={
            "env": "AGENTPLATFORM_MAX_WAITERS",
            "help": "wait-mode requests one web process holds; past it, `POST .../runs/` answers 202 at once",
        },
    )
    MAX_QUEUED_RUNS: int = field(
        default=10_000,
        metadata={
            "env": "AGENTPLATFORM_MAX_QUEUED_RUNS",
            "minimum": 1,
            "help": (
                "runs waiting for a worker in the deployment; past it, new runs get 503 `overloaded` with "
                "`Retry-After`, and nothing is written"
            ),
        },
    )
    MAX_QUEUED_RUNS_PER_KEY: int = field(
        default=1_000,
        metadata={
            "env": "AGENTPLATFORM_MAX_QUEUED_RUNS_PER_KEY",
            "minimum": 1,
            "help": "the same, for the runs of one API key",
        },
    )
    RATE_LIMIT_REQUESTS_PER_MINUTE: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_RATE_LIMIT_REQUESTS_PER_MINUTE",
            "minimum": 0,
            "help": (
                "API requests per minute of one API key (or one signed-in user); past it, 429 `rate_limited`. "
                "0: unlimited. A key's own limit, set in the admin, wins"
            ),
        },
    )
    RATE_LIMIT_RUNS_PER_MINUTE: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_RATE_LIMIT_RUNS_PER_MINUTE",
            "minimum": 0,
            "help": "runs started per minute, the same way",
        },
    )
    RATE_LIMIT_CONCURRENT_RUNS: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_RATE_LIMIT_CONCURRENT_RUNS",
            "minimum": 0,
            "help": "runs of one key not yet finished (queued, running or awaiting approval), the same way",
        },
    )
    RATE_LIMIT_TOKENS_PER_DAY: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_RATE_LIMIT_TOKENS_PER_DAY",
            "minimum": 0,
            "help": (
                "model tokens (input and output) one key's runs may use per UTC day; once used, new runs get "
                "429 `quota_exceeded`. 0: unlimited"
            ),
        },
    )
    OWNER_RATE_LIMIT_REQUESTS_PER_MINUTE: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_OWNER_RATE_LIMIT_REQUESTS_PER_MINUTE",
            "minimum": 0,
            "help": (
                "API requests per minute of one owner, all of their API keys (and their signed-in requests) together, "
                "checked as well as each key's own limit; past it, 429 `rate_limited` with `scope` `owner`. "
                "0: unlimited. An owner's own limit, set in the admin (Owner limits), wins"
            ),
        },
    )
    OWNER_RATE_LIMIT_RUNS_PER_MINUTE: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_OWNER_RATE_LIMIT_RUNS_PER_MINUTE",
            "minimum": 0,
            "help": "runs started per minute by one owner's keys together, the same way",
        },
    )
    OWNER_RATE_LIMIT_CONCURRENT_RUNS: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_OWNER_RATE_LIMIT_CONCURRENT_RUNS",
            "minimum": 0,
            "help": "unfinished runs of one owner's keys together, the same way",
        },
    )
    OWNER_RATE_LIMIT_TOKENS_PER_DAY: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_OWNER_RATE_LIMIT_TOKENS_PER_DAY",
            "minimum": 0,
            "help": "model tokens one owner's runs may use per UTC day, the same way; past it, 429 `quota_exceeded`",
        },
    )
    REPLICAS: list[str] = field(
        default_factory=list,
        metadata={
            "help": "the `DATABASES` aliases of read replicas, which lag-tolerant reads (lists, histories) use",
            "default": "`replica1`, `replica2`, ...: one per URL of `DATABASE_REPLICA_URLS`",
        },
    )
    REPLICA_MAX_LAG_SECONDS: float = field(
        default=5.0,
        metadata={
            "env": "AGENTPLATFORM_REPLICA_MAX_LAG_SECONDS",
            "help": "a replica further behind the primary than this is skipped (its reads go to the primary)",
        },
    )
    REPLICA_STICKY_SECONDS: float = field(
        default=5.0,
        metadata={
            "env": "AGENTPLATFORM_REPLICA_STICKY_SECONDS",
            "help": (
                "after a caller wrote (or one of its runs ended), its reads go to the primary for this long; keep it "
                "at or above `AGENTPLATFORM_REPLICA_MAX_LAG_SECONDS` so that a caller reads its own writes"
            ),
        },
    )
    REPLICA_CHECK_SECONDS: float = field(
        default=1.0,
        metadata={
            "env": "AGENTPLATFORM_REPLICA_CHECK_SECONDS",
            "help": "how long a process trusts a replica's measured lag (or that it is down) before measuring again",
        },
    )
    API_DOCS_PUBLIC: bool = field(
        default=False,
        metadata={"env": "AGENTPLATFORM_API_DOCS_PUBLIC", "help": "serve the schema and Swagger UI without auth"},
    )
    STREAM_DELTAS: bool = field(
        default=True,
        metadata={
            "env": "AGENTPLATFORM_STREAM_DELTAS",
            "help": "call models with their streaming API and emit `message.delta` events",
        },
    )
    DELTA_INTERVAL: float = field(
        default=0.1,
        metadata={
            "env": "AGENTPLATFORM_DELTA_INTERVAL",
            "help": "seconds: streamed chunks closer together than this are stored as one event",
        },
    )
    APPROVAL_TIMEOUT: float = field(
        default=86_400.0,
        metadata={
            "env": "AGENTPLATFORM_APPROVAL_TIMEOUT",
            "minimum": 1.0,
            "help": "seconds before an approval request expires (agents and tools can set their own in the admin)",
        },
    )
    WEBHOOKS_ALLOW_PRIVATE: bool = field(
        default=False,
        metadata={
            "env": "AGENTPLATFORM_WEBHOOKS_ALLOW_PRIVATE",
            "help": "allow webhook URLs that resolve to private, loopback or link-local addresses (SSRF guard off)",
        },
    )
    WEBHOOK_TIMEOUT: float = field(
        default=5.0,
        metadata={
            "env": "AGENTPLATFORM_WEBHOOK_TIMEOUT",
            "minimum": 0.001,
            "help": "seconds per webhook attempt (connect, and each read)",
        },
    )
    WEBHOOK_MAX_ATTEMPTS: int = field(
        default=8,
        metadata={
            "env": "AGENTPLATFORM_WEBHOOK_MAX_ATTEMPTS",
            "minimum": 1,
            "help": "attempts of a delivery before it is `failed`",
        },
    )
    WEBHOOK_RETRY_BASE: float = field(
        default=30.0,
        metadata={
            "env": "AGENTPLATFORM_WEBHOOK_RETRY_BASE",
            "help": "seconds before the first retry; doubles each time",
        },
    )
    WEBHOOK_RETRY_MAX: float = field(
        default=3_600.0,
        metadata={"env": "AGENTPLATFORM_WEBHOOK_RETRY_MAX", "help": "the longest wait between two attempts"},
    )
    WEBHOOK_REQUEUE_SECONDS: float = field(
        default=120.0,
        metadata={
            "env": "AGENTPLATFORM_WEBHOOK_REQUEUE_SECONDS",
            "minimum": 1.0,
            "help": "how often beat sends again deliveries overdue by this long (lost task, dead worker)",
        },
    )
    WEBHOOK_SECRETS_KEY: list[str] = field(
        default_factory=list,
        metadata={
            "env": "AGENTPLATFORM_WEBHOOK_SECRETS_KEY",
            "help": "comma-separated keys encrypting webhook secrets at rest: the first encrypts, all decrypt",
            "default": "derived from `DJANGO_SECRET_KEY`",
        },
    )

    SESSION_RETENTION_DAYS: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_SESSION_RETENTION_DAYS",
            "help": (
                "a session with no activity (no message, no run started or finished, no rename) for this many days "
                "is deleted with its runs, messages, events and approval requests; never one with an active run "
                "or one an enabled schedule runs in. 0: kept forever"
            ),
        },
    )
    RUN_EVENT_RETENTION_DAYS: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_RUN_EVENT_RETENTION_DAYS",
            "help": (
                "a finished run's events (its stream's replay) are deleted once older than this; the run and its "
                "messages stay. 0: kept as long as the run"
            ),
        },
    )
    WEBHOOK_DELIVERY_RETENTION_DAYS: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_WEBHOOK_DELIVERY_RETENTION_DAYS",
            "help": "delivered and failed webhook deliveries, with their attempts, are deleted after this. 0: kept",
        },
    )
    SCHEDULE_FIRING_RETENTION_DAYS: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_SCHEDULE_FIRING_RETENTION_DAYS",
            "help": "a schedule's firings are deleted after this, except its last one. 0: kept",
        },
    )
    AUDIT_RETENTION_DAYS: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_AUDIT_RETENTION_DAYS",
            "help": "audit entries older than this are deleted by the retention job. 0: kept forever",
        },
    )
    RETENTION_BATCH_SIZE: int = field(
        default=100,
        metadata={
            "env": "AGENTPLATFORM_RETENTION_BATCH_SIZE",
            "minimum": 1,
            "help": (
                "rows (sessions, events, ...) deleted per statement and transaction by the retention job; "
                "smaller holds locks for less time"
            ),
        },
    )
    RETENTION_INTERVAL: float = field(
        default=3_600.0,
        metadata={
            "env": "AGENTPLATFORM_RETENTION_INTERVAL",
            "minimum": 60.0,
            "help": "seconds between two runs of the retention job (beat, on the `maintenance` queue)",
        },
    )

    ADMIN_LOCKOUT_FAILURES: int = field(
        default=5,
        metadata={
            "env": "AGENTPLATFORM_ADMIN_LOCKOUT_FAILURES",
            "minimum": 1,
            "help": (
                "failed admin sign-ins (wrong password or code) after which the username, and separately the client "
                "address, are locked out"
            ),
        },
    )
    ADMIN_LOCKOUT_COOLOFF: float = field(
        default=900.0,
        metadata={
            "env": "AGENTPLATFORM_ADMIN_LOCKOUT_COOLOFF",
            "help": "seconds a lockout lasts after the last failure; 0: until unlocked in the admin",
        },
    )
    ADMIN_LOCKOUT_TRUSTED_PROXIES: int = field(
        default=0,
        metadata={
            "env": "AGENTPLATFORM_ADMIN_LOCKOUT_TRUSTED_PROXIES",
            "help": (
                "proxies in front of the web processes whose `X-Forwarded-For` entries are trusted: the lockout's "
                "client address is the entry the outermost one added (0: the connection's address)"
            ),
        },
    )


platform_settings = AppSettings(PlatformSettings, "AGENTPLATFORM")
