"""Completion signals between processes, through Redis: a worker says a run is done, and
the web request that waits for it wakes up at once (no polling).

On an event loop, `completions()` is the process's one subscription: a single Redis
connection receives every completion and wakes the requests waiting for it, however many.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis
from django.conf import settings

logger = logging.getLogger(__name__)

ASYNC_CONNECTIONS = 16  # per event loop: commands are short, so few connections serve many runs
SIGNAL_TTL_SECONDS = 300  # a signal outlives a waiter that has not started waiting yet


@functools.cache
def _client(url: str) -> redis.Redis:
    # Created on first use in each process (never at import, so never before a fork).
    timeout = settings.REDIS_TIMEOUT
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30)


def _key(name: str) -> str:
    return f"agentplatform:done:{name}"


def _announce(key: str, ttl: int) -> None:
    """Set `key` (for those who look later) and publish it (to those subscribed now)."""
    with _client(settings.REDIS_URL).pipeline() as pipe:
        pipe.set(key, 1, ex=ttl)
        pipe.publish(key, 1)
        pipe.execute()


def signal_done(name: str) -> None:
    """Mark `name` done (for waiters yet to come) and wake the waiters already there."""
    _announce(_key(name), SIGNAL_TTL_SECONDS)


WITHDRAWN = "~"  # published as `_key(WITHDRAWN + name)`: `name` is no longer done


def withdraw_done(name: str) -> None:
    """Take `signal_done(name)` back (a run paused for approval and now resumed will stop
    again): from here on, a waiter waits for the next signal."""
    with _client(settings.REDIS_URL).pipeline() as pipe:
        pipe.delete(_key(name))
        pipe.publish(_key(WITHDRAWN + name), 1)
        pipe.execute()


def _flag(name: str) -> str:
    return f"agentplatform:flag:{name}"


def raise_flag(name: str) -> None:
    """Raise `name` (kept for an hour) and tell the processes watching flags at once."""
    _announce(_flag(name), SIGNAL_TTL_SECONDS * 12)


def flag_raised(name: str) -> bool:
    """A cheap check, made at every step of a run. A Redis that does not answer is no flag:
    a run is never failed for want of this check."""
    try:
        return bool(_client(settings.REDIS_URL).exists(_flag(name)))
    except (redis.RedisError, OSError, TimeoutError):
        logger.warning("could not check flag %s", name, exc_info=True)
        return False


async def _follow(
    url: str,
    prefix: str,
    on_name: Callable[[str], None],
    on_subscribed: Callable[[aioredis.Redis], Awaitable[None]],
    on_lost: Callable[[], None] = lambda: None,
) -> None:
    """Forever: one connection subscribed to every key under `prefix`, calling `on_name` with
    each name published; `on_subscribed` runs once each (re)subscription is in place (to look
    for what was published while there was none), `on_lost` when the connection drops."""
    while True:
        try:
            client = aioredis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
            async with client, client.pubsub() as pubsub:
                await pubsub.psubscribe(f"{prefix}*")
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        on_name(message["channel"].decode().removeprefix(prefix))
                    elif message["type"] == "psubscribe":  # Redis confirms it: from here on, nothing is missed
                        await on_subscribed(client)
        except (redis.RedisError, OSError):
            on_lost()
            logger.warning("the subscription to %s* was lost; subscribing again", prefix, exc_info=True)
            await asyncio.sleep(1.0)


@functools.cache
def _async_client(url: str, loop: asyncio.AbstractEventLoop) -> aioredis.Redis:
    # One per event loop (its connections belong to that loop), made on first use there.
    timeout = settings.REDIS_TIMEOUT
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=ASYNC_CONNECTIONS, timeout=timeout, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    return aioredis.Redis(connection_pool=pool)


class Flags:
    """The flags raised anywhere, known on one event loop without a round trip per check: one
    subscription adds each flag as it is raised. `watched()` names the flags that matter
    (looked up again whenever the subscription starts, so none raised meanwhile is missed)."""

    def __init__(self, url: str, watched: Callable[[], list[str]]) -> None:
        self._url = url
        self._watched = watched
        self._raised: set[str] = set()

    def raised(self, name: str) -> bool:
        return name in self._raised

    def forget(self, name: str) -> None:
        self._raised.discard(name)

    async def check(self, name: str) -> bool:
        """Ask Redis once (a run starting: its flag may predate the subscription). A Redis
        that does not answer is no flag: a run is never failed for want of this check."""
        try:
            if await _async_client(self._url, asyncio.get_running_loop()).exists(_flag(name)):
                self._raised.add(name)
        except (redis.RedisError, OSError, TimeoutError):
            logger.warning("could not check flag %s", name, exc_info=True)
        return self.raised(name)

    async def listen(self) -> None:
        await _follow(self._url, _flag(""), self._raised.add, self._recheck)

    async def _recheck(self, _: aioredis.Redis) -> None:
        for name in self._watched():
            await self.check(name)


def wait_done(name: str, timeout: float) -> bool:
    """True once `signal_done(name)` has been called, before or during the wait.

    Subscribes before it checks, so a signal between the two cannot be missed; any number
    of waiters may wait for the same name.
    """
    client = _client(settings.REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(_key(name))
        if client.exists(_key(name)):
            return True
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if pubsub.get_message(timeout=left) is not None:
                return True
        return False
    finally:
        pubsub.close()


class Completions:
    """Waiters for `signal_done` names on one event loop, served by one subscription.

    The subscription hears every completion in the deployment; the names heard in the last
    HEARD_FOR seconds are kept. A waiter whose name cannot have been signalled before the
    subscription was in place (`since`: the run was created after it) needs no question to
    Redis: it has been heard already, or will be.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self._count = 0  # futures in _waiting
        self._heard: dict[str, float] = {}  # name: when, oldest first
        self._subscribed = asyncio.Event()
        self._subscribed_at = math.inf  # (monotonic) since when nothing published is missed
        self._listener: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return self._count

    async def wait(self, name: str, timeout: float, *, since: float | None = None) -> bool:
        """True once `signal_done(name)` has been called, before or during the wait; False
        at the timeout. `since` (time.monotonic()) is when the caller knew `name` was not
        signalled yet, if it does. Raises redis.RedisError when Redis cannot be reached."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        deadline = time.monotonic() + timeout
        async with asyncio.timeout(min(timeout, 5.0)):  # a Redis that does not answer is an error
            await self._subscribed.wait()
        if name in self._heard:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(name, set()).add(future)
        self._count += 1
        try:
            unheard = since is None or since < self._subscribed_at  # it may have come before the subscription
            if unheard and await _async_client(self._url, asyncio.get_running_loop()).exists(_key(name)):
                return True
            await asyncio.wait_for(future, max(0.0, deadline - time.monotonic()))
            return True
        except TimeoutError:
            return False
        finally:
            self._count -= 1
            futures = self._waiting.get(name, set())
            futures.discard(future)
            if not futures:
                self._waiting.pop(name, None)

    async def _listen(self) -> None:
        """Subscribed to every completion; on a lost connection, subscribe again and look
        for the names that completed meanwhile."""
        await _follow(self._url, _key(""), self._wake, self._recheck, on_lost=self._lost)

    async def _recheck(self, client: aioredis.Redis) -> None:
        self._subscribed_at = time.monotonic()
        self._subscribed.set()
        for name in list(self._waiting):
            if await client.exists(_key(name)):
                self._wake(name)

    def _lost(self) -> None:
        self._subscribed.clear()
        self._subscribed_at = math.inf

    def _wake(self, name: str) -> None:
        if name.startswith(WITHDRAWN):
            self._heard.pop(name.removeprefix(WITHDRAWN), None)
            return
        now = time.monotonic()
        self._heard.pop(name, None)
        self._heard[name] = now
        while (oldest := next(iter(self._heard.items()))) and oldest[1] < now - HEARD_FOR:
            del self._heard[oldest[0]]
        for future in self._waiting.get(name, ()):
            if not future.done():
                future.set_result(None)


HEARD_FOR = 60.0  # seconds a completion heard is remembered for waiters that come after it


@functools.cache
def _completions(url: str, loop: asyncio.AbstractEventLoop) -> Completions:
    return Completions(url)


def completions() -> Completions:
    """The running event loop's completion waiters (one subscription per loop)."""
    return _completions(settings.REDIS_URL, asyncio.get_running_loop())
