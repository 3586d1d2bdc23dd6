"""Rate limits and quotas per API key, counted in Redis (shared by every web process).

A caller is its API key, or the signed-in user for a request without one. Its limits are the
key's own (set in the admin) or the deployment's settings; 0 is unlimited. Each check is one
Lua script, so one round trip, atomic across processes:

- requests per minute and runs per minute are **fixed windows**: a counter that starts with
  the window's first hit and expires with it. One key and O(1) memory per caller, and the reset
  a client is told is exact; the price is that a caller may fit up to twice its limit across a
  window's edge, which for a per-minute limit protecting a service is an acceptable bound (a
  sliding log would cost memory per request, a sliding counter an estimate of `Remaining`).
- concurrent runs are a sorted set of the caller's unfinished run ids (scored by when each was
  admitted): added when the run is admitted, removed when it finishes (`run_ended`). A run
  whose ending was lost (a process killed in between, a transaction rolled back) would stay in
  it, so when the set says "full" it is checked against the database once and what has
  finished, or never was written, is dropped before deciding.
- model tokens per day are a counter per UTC day, charged from the run's usage when it
  finishes; a run is refused once the day's tokens are used (a run that starts under the quota
  may end past it).

Requests and runs are counted even when unlimited, so that the admin can show current use.
If Redis cannot be reached, nothing is refused: the failure is logged and the request goes on
(a limit is protection, not a reason to be down).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import redis
from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from agentplatform.conf import platform_settings
from agentplatform.errors import QuotaExceeded, RateLimited
from agentplatform.users import User
from agents.models import ACTIVE_RUN_STATUSES, ApiKey, Run

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
IN_FLIGHT_TTL_SECONDS = 7 * 86_400  # an idle caller's set of unfinished runs is forgotten after this
UNWRITTEN_GRACE_SECONDS = 60  # an admitted run not in the database this long after never will be
_REDIS_ERRORS = (redis.RedisError, OSError)

# KEYS: the window's counter. ARGV: limit (0: none), window seconds.
# Returns {allowed 1/0, count in the window, seconds until the window resets}.
_REQUEST_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
local limit = tonumber(ARGV[1])
if limit > 0 and count > limit then
  redis.call('DECR', KEYS[1])
  return {0, limit, ttl}
end
return {1, count, ttl}
"""

# KEYS: runs-per-minute counter, in-flight set, today's tokens. ARGV: runs limit, concurrent
# limit, tokens limit, run id, now, window seconds, in-flight TTL. Returns {'ok'} or
# {limit crossed, its count, seconds until it resets (-1: when a run ends)}.
_RUN_SCRIPT = """
local runs_limit, concurrent_limit, tokens_limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tokens_limit > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used >= tokens_limit then return {'tokens_per_day', used, -1} end
end
local in_flight = redis.call('ZCARD', KEYS[2])
if concurrent_limit > 0 and in_flight >= concurrent_limit then return {'concurrent_runs', in_flight, -1} end
local runs = tonumber(redis.call('GET', KEYS[1]) or '0')
if runs_limit > 0 and runs >= runs_limit then return {'runs_per_minute', runs, redis.call('TTL', KEYS[1])} end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[6]) end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return {'ok', 0, 0}
"""


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    runs_per_minute: int
    concurrent_runs: int
    tokens_per_day: int


def limits_for(api_key: ApiKey | None) -> Limits:
    """The caller's limits: the key's own where set, else the deployment's (0: unlimited)."""
    conf = platform_settings()

    def pick(own: int | None, default: int) -> int:
        return default if own is None else own

    own = api_key or ApiKey()
    return Limits(
        requests_per_minute=pick(own.requests_per_minute, conf.RATE_LIMIT_REQUESTS_PER_MINUTE),
        runs_per_minute=pick(own.runs_per_minute, conf.RATE_LIMIT_RUNS_PER_MINUTE),
        concurrent_runs=pick(own.concurrent_runs, conf.RATE_LIMIT_CONCURRENT_RUNS),
        tokens_per_day=pick(own.tokens_per_day, conf.RATE_LIMIT_TOKENS_PER_DAY),
    )


@dataclass(frozen=True)
class Quota:
    """Where a caller stands against one limit: the `RateLimit-*` headers."""

    limit: int
    remaining: int
    reset: int  # seconds

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(max(self.reset, 0)),
        }


def check_request(owner: User, api_key: ApiKey | None) -> Quota | None:
    """Count a request against the caller's per-minute limit; RateLimited past it. Returns
    where the caller stands (None when unlimited, or when Redis cannot say)."""
    limit = limits_for(api_key).requests_per_minute
    if not limit:  # nothing to enforce: no round trip to Redis on every request
        return None
    try:
        allowed, count, reset = _script(_REQUEST_SCRIPT)(
            keys=[_key(owner, api_key, "requests")], args=[limit, WINDOW_SECONDS]
        )
    except _REDIS_ERRORS as exc:
        logger.warning("rate limits: Redis cannot be reached (%s); request allowed", exc)
        return None
    quota = Quota(limit, limit - int(count), int(reset))
    if not allowed:
        raise _refused("requests_per_minute", quota)
    return quota


def admit_run(owner: User, api_key: ApiKey | None, run_id: UUID) -> None:
    """Admit a new run (before it is written) against the caller's runs per minute, concurrent
    runs and tokens per day; RateLimited (or QuotaExceeded for tokens) past one of them."""
    if not _limits_runs(limits_for(api_key)):
        return
    try:
        refusal = _try_admit(owner, api_key, run_id)
        if refusal is not None and refusal[0] == "concurrent_runs" and _forget_finished(owner, api_key):
            refusal = _try_admit(owner, api_key, run_id)  # what it counted had ended meanwhile
    except _REDIS_ERRORS as exc:
        logger.warning("rate limits: Redis cannot be reached (%s); run %s admitted", exc, run_id)
        return
    if refusal is not None:
        name, count, reset = refusal
        limit = getattr(limits_for(api_key), name)
        quota = Quota(limit, limit - count, _seconds_to_midnight() if name == "tokens_per_day" else reset)
        raise _refused(name, quota)


def _try_admit(owner: User, api_key: ApiKey | None, run_id: UUID) -> tuple[str, int, int] | None:
    limits = limits_for(api_key)
    keys = [_key(owner, api_key, "runs"), _key(owner, api_key, "in_flight"), _tokens_key(owner, api_key)]
    args = [
        limits.runs_per_minute,
        limits.concurrent_runs,
        limits.tokens_per_day,
        str(run_id),
        _now(),
        WINDOW_SECONDS,
        IN_FLIGHT_TTL_SECONDS,
    ]
    name, count, reset = _script(_RUN_SCRIPT)(keys=keys, args=args)
    return None if name == b"ok" else (name.decode(), int(count), int(reset))


def _forget_finished(owner: User, api_key: ApiKey | None) -> bool:
    """Drop from the caller's in-flight set the runs the database says are over, or that were
    never written; True if any was dropped."""
    key = _key(owner, api_key, "in_flight")
    client = _client(settings.REDIS_URL)
    rows = cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))
    members = {member.decode(): score for member, score in rows}
    statuses = dict(Run.objects.filter(pk__in=list(members)).values_list("pk", "status"))
    known = {str(pk): status for pk, status in statuses.items()}
    cutoff = _now() - UNWRITTEN_GRACE_SECONDS
    stale = [
        run_id
        for run_id, admitted in members.items()
        if (run_id in known and known[run_id] not in ACTIVE_RUN_STATUSES) or (run_id not in known and admitted < cutoff)
    ]
    return bool(stale) and bool(client.zrem(key, *stale))


def release_run(owner: User, api_key: ApiKey | None, run_id: UUID) -> None:
    """An admitted run that was not written after all no longer counts as in flight."""
    if not _limits_runs(limits_for(api_key)):
        return
    run_ended(owner_id=owner.pk, api_key_id=api_key.pk if api_key else None, run_id=run_id, tokens=0)


def counted(run: Run) -> bool:
    """Whether a run's end is recorded: its key or the deployment limits runs or tokens (a run
    whose key is not at hand is assumed to be counted)."""
    if run.api_key_id is not None and not Run._meta.get_field("api_key").is_cached(run):
        return True
    return _limits_runs(limits_for(run.api_key if run.api_key_id is not None else None))


def _limits_runs(limits: Limits) -> bool:
    return bool(limits.runs_per_minute or limits.concurrent_runs or limits.tokens_per_day)


def run_ended(*, owner_id: Any, api_key_id: Any, run_id: Any, tokens: int) -> None:
    """A run finished: it is no longer in flight, and its tokens are charged to today."""
    subject = _subject(owner_id, api_key_id)
    try:
        with _client(settings.REDIS_URL).pipeline() as pipe:
            pipe.zrem(f"{subject}:in_flight", str(run_id))
            if tokens:
                tokens_key = f"{subject}:tokens:{_today()}"
                pipe.incrby(tokens_key, tokens)
                pipe.expire(tokens_key, 2 * 86_400)
            pipe.execute()
    except _REDIS_ERRORS as exc:  # the set is reconciled with the database when it matters
        logger.warning("rate limits: could not record the end of run %s (%s)", run_id, exc)


@dataclass(frozen=True)
class CurrentUse:
    requests_this_minute: int
    runs_in_flight: int
    tokens_today: int


def use_from_database(api_key: ApiKey) -> CurrentUse:
    """A key's runs in flight and tokens today as its runs record them (for a key whose runs
    Redis does not count); requests are counted nowhere else."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    runs = Run.objects.filter(api_key=api_key)
    in_flight = runs.filter(status__in=ACTIVE_RUN_STATUSES).count()
    today = runs.filter(finished_at__gte=midnight).aggregate(tokens=Sum(F("input_tokens") + F("output_tokens")))
    return CurrentUse(0, in_flight, int(today["tokens"] or 0))


def current_use(api_key: ApiKey) -> CurrentUse | None:
    """What a key has used now (for the admin); None if Redis cannot be reached."""
    subject = _subject(api_key.user_id, api_key.pk)
    try:
        with _client(settings.REDIS_URL).pipeline(transaction=False) as pipe:
            pipe.get(f"{subject}:requests")
            pipe.zcard(f"{subject}:in_flight")
            pipe.get(f"{subject}:tokens:{_today()}")
            requests, in_flight, tokens = pipe.execute()
    except _REDIS_ERRORS as exc:
        logger.warning("rate limits: Redis cannot be reached (%s)", exc)
        return None
    return CurrentUse(int(requests or 0), int(in_flight), int(tokens or 0))


_MESSAGES = {
    "requests_per_minute": "Too many requests from this API key this minute; try again after Retry-After seconds.",
    "runs_per_minute": "Too many runs started by this API key this minute; try again after Retry-After seconds.",
    "concurrent_runs": "This API key has as many unfinished runs as it may; start more when some finish.",
    "tokens_per_day": "This API key has used its model tokens for today (UTC); try again after Retry-After seconds.",
}


def _refused(name: str, quota: Quota) -> RateLimited:
    # A concurrent limit frees when a run ends, which nobody can predict: suggest a short wait.
    retry_after = quota.reset if quota.reset > 0 else 1
    headers = {"Retry-After": str(retry_after), **quota.headers()}
    details = {"limit": name, "value": quota.limit}
    kind = QuotaExceeded if name == "tokens_per_day" else RateLimited
    return kind(_MESSAGES[name], details=details, headers=headers)


def _subject(owner_id: Any, api_key_id: Any) -> str:
    return f"agentplatform:limits:key:{api_key_id}" if api_key_id else f"agentplatform:limits:user:{owner_id}"


def _key(owner: User, api_key: ApiKey | None, counter: str) -> str:
    return f"{_subject(owner.pk, api_key.pk if api_key else None)}:{counter}"


def _tokens_key(owner: User, api_key: ApiKey | None) -> str:
    return _key(owner, api_key, f"tokens:{_today()}")


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


def _seconds_to_midnight() -> int:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds()) + 1


@functools.cache
def _client(url: str) -> redis.Redis:
    # Created on first use in each process; short timeouts, since a limit must not hold a request.
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, health_check_interval=30)


def _script(source: str) -> Any:
    return _registered(settings.REDIS_URL, source)


@functools.cache
def _registered(url: str, source: str) -> Any:
    # EVALSHA (falling back to EVAL once per server): one round trip.
    return _client(url).register_script(source)
