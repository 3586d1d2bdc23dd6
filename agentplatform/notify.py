"""Completion signals between processes, through Redis: a worker says a run is done, and
the web request that waits for it wakes up at once (no polling)."""

from __future__ import annotations

import asyncio
import functools
import time

import redis
import redis.asyncio as aioredis
from django.conf import settings

ASYNC_CONNECTIONS = 16  # per event loop: commands are short, so few connections serve many runs
SIGNAL_TTL_SECONDS = 300  # a signal outlives a waiter that has not started waiting yet


@functools.cache
def _client(url: str) -> redis.Redis:
    # Created on first use in each process (never at import, so never before a fork).
    return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


def _key(name: str) -> str:
    return f"agentplatform:done:{name}"


def signal_done(name: str) -> None:
    """Mark `name` done (for waiters yet to come) and wake the waiters already there."""
    client = _client(settings.REDIS_URL)
    with client.pipeline() as pipe:
        pipe.set(_key(name), 1, ex=SIGNAL_TTL_SECONDS)
        pipe.publish(_key(name), 1)
        pipe.execute()


def raise_flag(name: str) -> None:
    _client(settings.REDIS_URL).set(f"agentplatform:flag:{name}", 1, ex=SIGNAL_TTL_SECONDS * 12)


def flag_raised(name: str) -> bool:
    """A cheap check, made at every step of a run."""
    return bool(_client(settings.REDIS_URL).exists(f"agentplatform:flag:{name}"))


@functools.cache
def _async_client(url: str, loop: asyncio.AbstractEventLoop) -> aioredis.Redis:
    # One per event loop (its connections belong to that loop), made on first use there.
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=ASYNC_CONNECTIONS, timeout=5)
    return aioredis.Redis(connection_pool=pool, socket_connect_timeout=5)


async def aflag_raised(name: str) -> bool:
    """`flag_raised` on an event loop (a bounded pool of connections shared by its runs)."""
    client = _async_client(settings.REDIS_URL, asyncio.get_running_loop())
    return bool(await client.exists(f"agentplatform:flag:{name}"))


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
