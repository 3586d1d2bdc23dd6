"""Rate limits and quotas per API key and per owner, counted in Redis (shared by every web process).

A caller is its API key, or the signed-in user for a request without one; its owner is the user
all of its keys belong to. Each has its limits (scope `key` and scope `owner`): its own (set in
the admin, on the key or in the owner's `OwnerLimits`) or the deployment's settings; 0 is
unlimited. Both scopes are checked in one Lua script, so one round trip, atomic across
processes: nothing is counted unless every limit admits it, and a refusal names the scope
whose limit was crossed (with the tighter one's headers when both admit it):

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

Within a scope that limits something, requests (or runs) are counted even past what is unlimited,
so that the admin can show current use; a scope with no limit costs nothing, and when neither
does there is no round trip at all.
If Redis cannot be reached, nothing is refused: the failure is logged and the request goes on
(a limit is protection, not a reason to be down).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast
from uuid import UUID

import redis
from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from agentplatform.conf import platform_settings
from agentplatform.errors import QuotaExceeded, RateLimited
from agentplatform.users import User
from agents.models import ACTIVE_RUN_STATUSES, ApiKey, OwnerLimits, Run

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
IN_FLIGHT_TTL_SECONDS = 7 * 86_400  # an idle caller's set of unfinished runs is forgotten after this
UNWRITTEN_GRACE_SECONDS = 60  # an admitted run not in the database this long after never will be
_REDIS_ERRORS = (redis.RedisError, OSError)

# KEYS: one window counter per scope. ARGV: window seconds, then each scope's limit (> 0).
# Returns {allowed 1/0, scope index, limit, count, seconds until its window resets}: the scope
# refused, else the one with the least left. Nothing is counted unless every scope admits it.
_REQUEST_SCRIPT = """
local window = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if tonumber(redis.call('GET', key) or '0') >= limit then
    local ttl = redis.call('TTL', key)
    if ttl < 0 then ttl = window end
    return {0, i, limit, limit, ttl}
  end
end
local best = nil
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  local count = redis.call('INCR', key)
  local ttl = redis.call('TTL', key)
  if ttl < 0 then redis.call('EXPIRE', key, window); ttl = window end
  if best == nil or limit - count < best[3] - best[4] then best = {1, i, limit, count, ttl} end
end
return best
"""

# KEYS: per scope, its runs-per-minute counter, in-flight set and today's tokens. ARGV: run id,
# now, window seconds, in-flight TTL, then per scope its runs, concurrent and tokens limits.
# Returns {'ok'} or {limit crossed, scope index, its count, seconds until it resets (-1: when a
# run ends)}. The run is counted in every scope only if every scope admits it.
_RUN_SCRIPT = """
local scopes = #KEYS / 3
for s = 1, scopes do
  local k, a = (s - 1) * 3, 4 + (s - 1) * 3
  local runs_limit, concurrent_limit, tokens_limit = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  if tokens_limit > 0 then
    local used = tonumber(redis.call('GET', KEYS[k + 3]) or '0')
    if used >= tokens_limit then return {'tokens_per_day', s, used, -1} end
  end
  local in_flight = redis.call('ZCARD', KEYS[k + 2])
  if concurrent_limit > 0 and in_flight >= concurrent_limit then return {'concurrent_runs', s, in_flight, -1} end
  local runs = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
  if runs_limit > 0 and runs >= runs_limit then return {'runs_per_minute', s, runs, redis.call('TTL', KEYS[k + 1])} end
end
for s = 1, scopes do
  local k = (s - 1) * 3
  if redis.call('INCR', KEYS[k + 1]) == 1 then redis.call('EXPIRE', KEYS[k + 1], ARGV[3]) end
  redis.call('ZADD', KEYS[k + 2], ARGV[2], ARGV[1])
  redis.call('EXPIRE', KEYS[k + 2], ARGV[4])
end
return {'ok', 0, 0, 0}
"""


class Scope(StrEnum):
    KEY = "key"  # one API key (or one signed-in user's requests without a key)
    OWNER = "owner"  # all of one user's keys, and their signed-in requests, together


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    runs_per_minute: int
    concurrent_runs: int
    tokens_per_day: int

    @property
    def limits_runs(self) -> bool:
        return bool(self.runs_per_minute or self.concurrent_runs or self.tokens_per_day)


def _pick(own: int | None, default: int) -> int:
    return default if own is None else own


def limits_for(api_key: ApiKey | None) -> Limits:
    """The caller's limits: the key's own where set, else the deployment's (0: unlimited)."""
    conf = platform_settings()
    own = api_key or ApiKey()
    return Limits(
        requests_per_minute=_pick(own.requests_per_minute, conf.RATE_LIMIT_REQUESTS_PER_MINUTE),
        runs_per_minute=_pick(own.runs_per_minute, conf.RATE_LIMIT_RUNS_PER_MINUTE),
        concurrent_runs=_pick(own.concurrent_runs, conf.RATE_LIMIT_CONCURRENT_RUNS),
        tokens_per_day=_pick(own.tokens_per_day, conf.RATE_LIMIT_TOKENS_PER_DAY),
    )


def owner_limits_for(owner: User) -> Limits:
    """The owner's limits over all of their keys: their `OwnerLimits` where set, else the
    deployment's. The row is read once per user object (an API key's user comes with it)."""
    conf = platform_settings()
    own = _owner_row(owner) or OwnerLimits()
    return Limits(
        requests_per_minute=_pick(own.requests_per_minute, conf.OWNER_RATE_LIMIT_REQUESTS_PER_MINUTE),
        runs_per_minute=_pick(own.runs_per_minute, conf.OWNER_RATE_LIMIT_RUNS_PER_MINUTE),
        concurrent_runs=_pick(own.concurrent_runs, conf.OWNER_RATE_LIMIT_CONCURRENT_RUNS),
        tokens_per_day=_pick(own.tokens_per_day, conf.OWNER_RATE_LIMIT_TOKENS_PER_DAY),
    )


def _owner_row(owner: User) -> OwnerLimits | None:
    relation: Any = User._meta.get_field("owner_limits")
    if not relation.is_cached(owner):
        relation.set_cached_value(owner, OwnerLimits.objects.filter(user_id=owner.pk).first())
    return cast(OwnerLimits | None, relation.get_cached_value(owner))


@dataclass(frozen=True)
class _Scoped:
    scope: Scope
    subject: str  # the prefix of the scope's Redis keys
    limits: Limits


def _scopes(owner: User, api_key: ApiKey | None) -> list[_Scoped]:
    return [
        _Scoped(Scope.KEY, _subject(owner.pk, api_key.pk if api_key else None), limits_for(api_key)),
        _Scoped(Scope.OWNER, _owner_subject(owner.pk), owner_limits_for(owner)),
    ]


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
    """Count a request against the key's and the owner's requests per minute; RateLimited past
    either. Returns where the caller stands against the tighter one (None when both are
    unlimited, or when Redis cannot say)."""
    limited = [s for s in _scopes(owner, api_key) if s.limits.requests_per_minute]
    if not limited:  # nothing to enforce: no round trip to Redis on every request
        return None
    try:
        allowed, index, limit, count, reset = _script(_REQUEST_SCRIPT)(
            keys=[f"{s.subject}:requests" for s in limited],
            args=[WINDOW_SECONDS, *(s.limits.requests_per_minute for s in limited)],
        )
    except _REDIS_ERRORS as exc:
        logger.warning("rate limits: Redis cannot be reached (%s); request allowed", exc)
        return None
    quota = Quota(int(limit), int(limit) - int(count), int(reset))
    if not allowed:
        raise _refused("requests_per_minute", limited[int(index) - 1].scope, quota)
    return quota


def admit_run(owner: User, api_key: ApiKey | None, run_id: UUID) -> None:
    """Admit a new run (before it is written) against the key's and the owner's runs per
    minute, concurrent runs and tokens per day; RateLimited (or QuotaExceeded for tokens) past
    one of them."""
    counted = [s for s in _scopes(owner, api_key) if s.limits.limits_runs]
    if not counted:
        return
    try:
        refusal = _try_admit(counted, run_id)
        if refusal is not None and refusal[0] == "concurrent_runs" and _forget_finished(refusal[1].subject):
            refusal = _try_admit(counted, run_id)  # what it counted had ended meanwhile
    except _REDIS_ERRORS as exc:
        logger.warning("rate limits: Redis cannot be reached (%s); run %s admitted", exc, run_id)
        return
    if refusal is not None:
        name, scoped, count, reset = refusal
        limit = getattr(scoped.limits, name)
        quota = Quota(limit, limit - count, _seconds_to_midnight() if name == "tokens_per_day" else reset)
        raise _refused(name, scoped.scope, quota)


def _try_admit(counted: list[_Scoped], run_id: UUID) -> tuple[str, _Scoped, int, int] | None:
    keys = [key for s in counted for key in (f"{s.subject}:runs", f"{s.subject}:in_flight", _tokens_key(s.subject))]
    args: list[Any] = [str(run_id), _now(), WINDOW_SECONDS, IN_FLIGHT_TTL_SECONDS]
    for s in counted:
        args += [s.limits.runs_per_minute, s.limits.concurrent_runs, s.limits.tokens_per_day]
    name, index, count, reset = _script(_RUN_SCRIPT)(keys=keys, args=args)
    return None if name == b"ok" else (name.decode(), counted[int(index) - 1], int(count), int(reset))


def _forget_finished(subject: str) -> bool:
    """Drop from a scope's in-flight set the runs the database says are over, or that were
    never written; True if any was dropped."""
    key = f"{subject}:in_flight"
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
    if not any(s.limits.limits_runs for s in _scopes(owner, api_key)):
        return
    run_ended(owner_id=owner.pk, api_key_id=api_key.pk if api_key else None, run_id=run_id, tokens=0)


def counted(run: Run) -> bool:
    """Whether a run's end is recorded: its key or its owner limits runs or tokens (a run whose
    key is not at hand is assumed to be counted; its owner's limits are read if need be)."""
    if run.api_key_id is not None and not Run._meta.get_field("api_key").is_cached(run):
        return True
    if limits_for(run.api_key if run.api_key_id is not None else None).limits_runs:
        return True
    if Run._meta.get_field("owner").is_cached(run):  # with their limits (`selectors.claimed_run`)
        return owner_limits_for(run.owner).limits_runs
    return owner_limits_for(User(pk=run.owner_id)).limits_runs  # their row read, not the user


def run_ended(*, owner_id: Any, api_key_id: Any, run_id: Any, tokens: int) -> None:
    """A run finished: it is no longer in flight, and its tokens are charged to today, for its
    key and its owner."""
    try:
        with _client(settings.REDIS_URL).pipeline() as pipe:
            for subject in (_subject(owner_id, api_key_id), _owner_subject(owner_id)):
                pipe.zrem(f"{subject}:in_flight", str(run_id))
                if tokens:
                    tokens_key = _tokens_key(subject)
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


def use_from_database(api_key: ApiKey | None = None, *, owner: User | None = None) -> CurrentUse:
    """A key's (or an owner's) runs in flight and tokens today as its runs record them (where
    Redis counts no runs); requests are counted nowhere else."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    runs = Run.objects.filter(api_key=api_key) if api_key is not None else Run.objects.filter(owner=owner)
    in_flight = runs.filter(status__in=ACTIVE_RUN_STATUSES).count()
    today = runs.filter(finished_at__gte=midnight).aggregate(tokens=Sum(F("input_tokens") + F("output_tokens")))
    return CurrentUse(0, in_flight, int(today["tokens"] or 0))


def current_use(api_key: ApiKey) -> CurrentUse | None:
    """What a key has used now (for the admin); None if Redis cannot be reached."""
    return _use(_subject(api_key.user_id, api_key.pk))


def current_owner_use(owner_id: Any) -> CurrentUse | None:
    """What an owner's keys have used together now (for the admin); None if Redis cannot be reached."""
    return _use(_owner_subject(owner_id))


def _use(subject: str) -> CurrentUse | None:
    try:
        with _client(settings.REDIS_URL).pipeline(transaction=False) as pipe:
            pipe.get(f"{subject}:requests")
            pipe.zcard(f"{subject}:in_flight")
            pipe.get(_tokens_key(subject))
            requests, in_flight, tokens = pipe.execute()
    except _REDIS_ERRORS as exc:
        logger.warning("rate limits: Redis cannot be reached (%s)", exc)
        return None
    return CurrentUse(int(requests or 0), int(in_flight), int(tokens or 0))


_MESSAGES = {
    "requests_per_minute": "Too many requests from {who} this minute; try again after Retry-After seconds.",
    "runs_per_minute": "Too many runs started by {who} this minute; try again after Retry-After seconds.",
    "concurrent_runs": "{Who} {has} as many unfinished runs as {it} may; start more when some finish.",
    "tokens_per_day": "{Who} {has} used {its} model tokens for today (UTC); try again after Retry-After seconds.",
}
_WHO = {
    Scope.KEY: {"who": "this API key", "Who": "This API key", "has": "has", "it": "it", "its": "its"},
    Scope.OWNER: {
        "who": "this owner's API keys",
        "Who": "This owner's API keys",
        "has": "have",
        "it": "they",
        "its": "their",
    },
}


def _refused(name: str, scope: Scope, quota: Quota) -> RateLimited:
    # A concurrent limit frees when a run ends, which nobody can predict: suggest a short wait.
    retry_after = quota.reset if quota.reset > 0 else 1
    headers = {"Retry-After": str(retry_after), **quota.headers()}
    details = {"limit": name, "value": quota.limit, "scope": str(scope)}
    kind = QuotaExceeded if name == "tokens_per_day" else RateLimited
    return kind(_MESSAGES[name].format(**_WHO[scope]), details=details, headers=headers)


def _subject(owner_id: Any, api_key_id: Any) -> str:
    return f"agentplatform:limits:key:{api_key_id}" if api_key_id else f"agentplatform:limits:user:{owner_id}"


def _owner_subject(owner_id: Any) -> str:
    return f"agentplatform:limits:owner:{owner_id}"


def _tokens_key(subject: str) -> str:
    return f"{subject}:tokens:{_today()}"


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
