"""The platform's own knobs (`settings.AGENTPLATFORM`), read through one typed object."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


@dataclass(frozen=True)
class PlatformSettings:
    AGENTS: list[str] = field(default_factory=list)
    MAX_INPUT_CHARS: int = 32_000
    MAX_STEPS: int = 10
    HISTORY_LIMIT: int = 50
    TOOL_TIMEOUT: float = 30.0
    MODEL_TIMEOUT: float = 60.0
    MODEL_MAX_RETRIES: int = 2
    RUN_WAIT_SECONDS: float = 60.0
    RUN_LEASE_SECONDS: float = 60.0
    RUN_REQUEUE_SECONDS: float = 120.0
    RUN_CONCURRENCY: int = 256  # runs one worker process carries at once (waiting on models holds no thread)
    RUN_DB_THREADS: int = 8  # a worker's threads for runs' database steps (keep <= the connection pool)
    RUN_SYNC_THREADS: int = 32  # a worker's threads for sync tools and sync providers (as many for sync run())
    RUN_SLOT_WAIT: float = 5.0  # a task waits this long for a free slot, then goes back to the broker
    WORKER_DRAIN_SECONDS: float = 30.0  # a stopping worker lets its runs finish for this long
    WEB_DRAIN_SECONDS: float = 10.0  # a stopping web process lets its requests finish for this long
    WEB_THREADS: int = 10  # a web process's threads for requests' sync work (keep <= the connection pool)
    MAX_WAITERS: int = 10_000  # requests one web process holds waiting for runs; past it, 202 at once
    MAX_QUEUED_RUNS: int = 10_000  # queued runs in the deployment; past it, new runs get 503
    MAX_QUEUED_RUNS_PER_KEY: int = 1_000  # queued runs of one API key; past it, its new runs get 503
    API_DOCS_PUBLIC: bool = False
    STREAM_DELTAS: bool = True
    DELTA_INTERVAL: float = 0.1
    APPROVAL_TIMEOUT: float = 86_400.0
    WEBHOOKS_ALLOW_PRIVATE: bool = False
    WEBHOOK_TIMEOUT: float = 5.0
    WEBHOOK_MAX_ATTEMPTS: int = 8
    WEBHOOK_RETRY_BASE: float = 30.0
    WEBHOOK_RETRY_MAX: float = 3_600.0
    WEBHOOK_REQUEUE_SECONDS: float = 120.0
    WEBHOOK_SECRETS_KEY: list[str] = field(default_factory=list)


@functools.cache
def platform_settings() -> PlatformSettings:
    configured: dict[str, Any] = getattr(settings, "AGENTPLATFORM", {})
    known = {f.name for f in fields(PlatformSettings)}
    unknown = set(configured) - known
    if unknown:
        raise ImproperlyConfigured(f"unknown AGENTPLATFORM settings: {', '.join(sorted(unknown))}")
    return PlatformSettings(**configured)


def _reset(*, setting: str, **_: Any) -> None:
    if setting == "AGENTPLATFORM":
        platform_settings.cache_clear()


setting_changed.connect(_reset)
