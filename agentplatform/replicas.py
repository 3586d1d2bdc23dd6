"""Read replicas: reads that may lag go to a replica, everything else to the primary.

`DATABASE_REPLICA_URLS` adds PostgreSQL hot standbys as the databases `replica1`, `replica2`,
... (`PlatformSettings.REPLICAS` names them). Nothing reads from one unless it says so: a view
whose reads tolerate a few seconds of lag (a list, a history page, an admin list) runs them
through `read()`: `@lag_tolerant` on an API view's handler, `LagTolerantChangelist` in the
admin. Every other read (authentication, run claims, idempotency keys, locks and
compare-and-set, the statements of `agentplatform.sql`, event streams) and every write goes
to the primary (`PrimaryRouter`).

A lag-tolerant read still goes to the primary when
- its caller wrote in the last REPLICA_STICKY_SECONDS (read-your-writes): a request that may
  have changed something, or a run of theirs that ended or paused, marks the caller in Redis,
  which every web process reads;
- it runs inside a transaction on the primary;
- no replica is usable: each process measures each replica's lag at most every
  REPLICA_CHECK_SECONDS and skips one that is down or further behind than
  REPLICA_MAX_LAG_SECONDS, with a log line when that changes and a count of the reads it did
  not serve (`/api/v1/ready/`, and the OpenTelemetry counter
  `agentplatform.db.replica.skipped_reads`).
A replica that fails during a read (it stopped since it was measured) is marked down, and the
read runs again on the primary.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections, transaction
from django.http import HttpRequest, HttpResponseBase
from opentelemetry import metrics

from agentplatform.conf import platform_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The replica the reads of the current `read()` go to (None: Django's choice, the primary).
_reading: contextvars.ContextVar[str | None] = contextvars.ContextVar("agentplatform_replica", default=None)

# Seconds behind the primary: 0 when the replica has replayed all it received (an idle
# primary sends nothing, which is not lag), else the age of the last transaction it replayed.
# NULL (unknown: nothing received or replayed yet) counts as too far behind.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
END
"""

OK, LAGGING, DOWN, UNCHECKED = "ok", "lagging", "down", "unchecked"
DOWN_RETRY_SECONDS = 10.0  # a replica that is down is tried again this often at most, by one request per process
READ_ONLY = "agentplatform_read_only"  # set on a request whose view declared its reads lag-tolerant


class PrimaryRouter:
    """Writes go to the primary; a read goes to a replica only inside `read()`. Replicas are
    never migrated (they copy the primary), and rows read from one relate to the primary's."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return _reading.get()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        same_rows = {DEFAULT_DB_ALIAS, *platform_settings().REPLICAS}
        return True if {obj1._state.db, obj2._state.db} <= same_rows else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db in platform_settings().REPLICAS else None


def read(function: Callable[[], T], *, owner_id: object) -> T:
    """`function()`, which only reads, with its reads on a replica when one may serve
    `owner_id` (see the module); on the primary otherwise, or again there if the replica fails."""
    alias = reader(owner_id)
    if alias == DEFAULT_DB_ALIAS:
        return function()
    token = _reading.set(alias)
    try:
        return function()
    except (OperationalError, InterfaceError) as exc:  # the replica went away (or cancelled a read to replay)
        monitor().failed(alias, exc)
    finally:
        _reading.reset(token)
    return function()


def reader(owner_id: object) -> str:
    """The database for a lag-tolerant read of `owner_id`'s rows: a usable replica, or the primary."""
    replicas = platform_settings().REPLICAS
    if not replicas or connections[DEFAULT_DB_ALIAS].in_atomic_block or _wrote_recently(owner_id):
        return DEFAULT_DB_ALIAS
    watch = monitor()
    usable = []
    for alias in replicas:
        if watch.usable(alias):
            usable.append(alias)
        else:
            watch.skipped(alias)
    return random.choice(usable) if usable else DEFAULT_DB_ALIAS  # noqa: S311  # spreads reads; no secret


def lag_tolerant(handler: Callable[..., T]) -> Callable[..., T]:
    """An API view's handler that writes nothing and whose reads may be a few seconds old
    (lists, history): its reads go through `read()` for the caller."""

    @functools.wraps(handler)
    def handle(view: Any, request: Any, *args: Any, **kwargs: Any) -> T:
        setattr(getattr(request, "_request", request), READ_ONLY, True)  # the Django request under DRF's
        return read(functools.partial(handler, view, request, *args, **kwargs), owner_id=request.user.pk)

    return handle


# Read-your-writes: who wrote lately, in Redis (every web process sees it).


def wrote(owner_id: object) -> None:
    """`owner_id` changed something: its lag-tolerant reads go to the primary for REPLICA_STICKY_SECONDS."""
    conf = platform_settings()
    if not conf.REPLICAS or not conf.REPLICA_STICKY_SECONDS:
        return
    try:
        _redis().set(_key(owner_id), 1, px=max(1, math.ceil(conf.REPLICA_STICKY_SECONDS * 1000)))
    except (redis.RedisError, OSError) as exc:
        logger.warning("read replicas: Redis did not take the mark of owner %s, who wrote (%s)", owner_id, exc)


def wrote_on_commit(owner_id: object) -> None:
    """`wrote(owner_id)` once the current transaction commits (nothing when no replica is configured)."""
    if platform_settings().REPLICAS:
        transaction.on_commit(functools.partial(wrote, owner_id), robust=True)


def _wrote_recently(owner_id: object) -> bool:
    if not platform_settings().REPLICA_STICKY_SECONDS:
        return False
    try:
        return bool(_redis().exists(_key(owner_id)))
    except (redis.RedisError, OSError):
        return True  # unknown: the primary, which is never behind (Redis's state is in /ready/)


def _key(owner_id: object) -> str:
    return f"agentplatform:replicas:wrote:{owner_id}"


@functools.cache
def _redis() -> redis.Redis:
    # Created on first use in each process (never at import, so never before a fork).
    timeout = settings.REDIS_TIMEOUT
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


class ReadYourWritesMiddleware:
    """After a request that may have written (a method other than GET, HEAD or OPTIONS, not
    refused with a 4xx, not a lag-tolerant view), its caller reads from the primary for a while."""

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            platform_settings().REPLICAS
            and request.method not in self.SAFE_METHODS
            and not 400 <= response.status_code < 500  # noqa: PLR2004  # a 4xx wrote nothing
            and not getattr(request, READ_ONLY, False)
        ):
            user = getattr(request, "user", None)  # DRF's authenticated caller too: it sets it here
            if user is not None and user.is_authenticated:
                wrote(user.pk)
        return response


# Each replica's health, as this process measured it. Measuring takes a connection from the
# replica's pool: a replica that is down makes that one read wait for the pool's timeout
# (`agentplatform.env.REPLICA_CONNECT_TIMEOUT`) before it goes to the primary.


@dataclasses.dataclass
class ReplicaState:
    status: str = UNCHECKED
    lag_seconds: float | None = None
    error: str = ""
    skipped_reads: int = 0  # lag-tolerant reads of this process it did not serve (down or behind)
    checked_at: float = -math.inf  # time.monotonic()


class Monitor:
    """The replicas' lag and availability, measured at most every REPLICA_CHECK_SECONDS by one
    thread at a time (the others go on with what was last measured)."""

    def __init__(self) -> None:
        self._states: dict[str, ReplicaState] = {}
        self._measuring: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def state(self, alias: str) -> ReplicaState:
        with self._guard:
            self._measuring.setdefault(alias, threading.Lock())
            return self._states.setdefault(alias, ReplicaState())

    def usable(self, alias: str) -> bool:
        state = self.state(alias)
        interval = platform_settings().REPLICA_CHECK_SECONDS
        if state.status == DOWN:  # trying one costs a request up to REPLICA_CONNECT_TIMEOUT
            interval = max(interval, DOWN_RETRY_SECONDS)
        if time.monotonic() - state.checked_at >= interval:
            lock = self._measuring[alias]
            if lock.acquire(blocking=False):
                try:
                    self.measure(alias)
                finally:
                    lock.release()
        return state.status == OK

    def measure(self, alias: str) -> ReplicaState:
        """Ask the replica how far behind it is, now."""
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(LAG_SQL)
                (found,) = cursor.fetchone()
        except DatabaseError as exc:
            self._record(alias, DOWN, None, _described(exc))
        else:
            lag = None if found is None else max(0.0, float(found))
            fresh = lag is not None and lag <= platform_settings().REPLICA_MAX_LAG_SECONDS
            self._record(alias, OK if fresh else LAGGING, lag, "")
        return self.state(alias)

    def failed(self, alias: str, exc: Exception) -> None:
        """A read on the replica failed: it is down until measured again, and the read goes to the primary."""
        self._record(alias, DOWN, None, _described(exc))
        self.skipped(alias)

    def skipped(self, alias: str) -> None:
        state = self.state(alias)
        with self._guard:
            state.skipped_reads += 1
        _skipped_reads().add(1, {"db.replica": alias, "reason": state.status})

    def _record(self, alias: str, status: str, lag: float | None, error: str) -> None:
        state = self.state(alias)
        if status != state.status:
            _log_change(alias, state.status, status, lag, error)
        state.status, state.lag_seconds, state.error = status, lag, error
        state.checked_at = time.monotonic()


def _log_change(alias: str, before: str, status: str, lag: float | None, error: str) -> None:
    limit = platform_settings().REPLICA_MAX_LAG_SECONDS
    if status == DOWN:
        logger.warning("read replica %s is down, its reads go to the primary: %s", alias, error)
    elif status == LAGGING and lag is None:
        logger.warning("read replica %s has replayed nothing yet, its reads go to the primary", alias)
    elif status == LAGGING:
        logger.warning("read replica %s is %.1f s behind (limit %s s), its reads go to the primary", alias, lag, limit)
    elif before != UNCHECKED:
        logger.info("read replica %s serves reads again (%.1f s behind)", alias, lag or 0.0)


def _described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


@functools.cache
def monitor() -> Monitor:
    """This process's monitor (one per process: each measures for itself)."""
    return Monitor()


@functools.cache
def _skipped_reads() -> metrics.Counter:
    # Recorded by the MeterProvider set in the process (OpenTelemetry's API: a no-op without one).
    return metrics.get_meter(__name__).create_counter(
        "agentplatform.db.replica.skipped_reads",
        unit="{read}",
        description="Lag-tolerant reads a read replica did not serve because it was down or too far behind",
    )


def report() -> dict[str, dict[str, Any]]:
    """Each configured replica as this process last measured it (measured now if never yet):
    its status, lag, error, and the reads it did not serve so far (for /api/v1/ready/,
    which a replica that is down must not slow down: a load balancer calls it often)."""
    watch = monitor()
    found = {}
    for alias in platform_settings().REPLICAS:
        state = watch.state(alias)
        if state.status == UNCHECKED:
            watch.measure(alias)
        found[alias] = {
            "status": state.status,
            "lag_seconds": state.lag_seconds,
            "measured_seconds_ago": round(time.monotonic() - state.checked_at, 1),
            "skipped_reads": state.skipped_reads,
            **({"error": state.error} if state.error else {}),
        }
    return found
