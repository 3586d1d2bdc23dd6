"""Quick probes of the services that requests depend on: a request that needs Redis when it
does not answer gets a 503 before it writes anything, and `/api/v1/ready/` reports each."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection

READY_TIMEOUT = 1.0  # seconds each readiness probe may take

Check = Callable[[], object]  # raises when its dependency does not answer


@functools.cache
def _client(url: str, timeout: float) -> redis.Redis:
    # Created on first use in each process (never at import, so never before a fork).
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def ping(url: str, timeout: float | None = None) -> None:
    """Raises redis.RedisError (ConnectionError, TimeoutError) unless the Redis at `url`
    answers within `timeout` (default: REDIS_TIMEOUT)."""
    _client(url, timeout if timeout is not None else settings.REDIS_TIMEOUT).ping()


def _broker_urls() -> list[str]:
    """The broker's URL if it is a Redis other than REDIS_URL (the broker is Redis by default)."""
    url = settings.CELERY_BROKER_URL
    return [url] if urlsplit(url).scheme in ("redis", "rediss") and url != settings.REDIS_URL else []


ANSWERED_FOR = 1.0  # seconds a Redis that answered is trusted without asking it again

_answered_at: dict[str, float] = {}


def require_redis() -> None:
    """Redis (events, completion signals) and the broker answer, or redis.RedisError: for a
    request about to write something that a worker must then pick up. A Redis that answered
    in the last ANSWERED_FOR seconds is not asked again (not a round trip per run); one that
    stops in between fails the run's dispatch instead, which the reaper sends again."""
    now = time.monotonic()
    for url in [settings.REDIS_URL, *_broker_urls()]:
        if now - _answered_at.get(url, -ANSWERED_FOR) >= ANSWERED_FOR:
            ping(url)
            _answered_at[url] = now


def database() -> None:
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def redis_server() -> None:
    ping(settings.REDIS_URL, READY_TIMEOUT)


def broker() -> None:
    for url in _broker_urls() or [settings.REDIS_URL]:
        ping(url, READY_TIMEOUT)


def report(checks: Mapping[str, Check]) -> tuple[bool, dict[str, str]]:
    """Run each check: whether all passed, and each one's status ("ok", "off", or what failed)."""
    statuses: dict[str, str] = {}
    for name, check in checks.items():
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001  # any failure of a dependency means "not ready"
            statuses[name] = f"{type(exc).__name__}: {exc}"[:200]
        else:
            statuses[name] = result if isinstance(result, str) else "ok"
    return all(status in ("ok", "off") for status in statuses.values()), statuses
