"""Bounded thread pools for sync work reached from an event loop.

Async code (the web tier's views that wait, streams, a worker's runs) does its sync work
(the ORM, middleware, user code) on a pool whose size bounds the threads, and so the
database connections, a process uses, whatever the number of requests or runs waiting.
Each call gives back what its thread used: a pooled connection returns to its pool, so
nothing waiting holds one.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import close_old_connections, connections

from agentplatform.conf import platform_settings

T = TypeVar("T")


def closing(function: Callable[..., T]) -> Callable[..., T]:
    """`function`, after which its thread closes (or returns to the pool) its connections
    as the settings say (CONN_MAX_AGE), as Django does at the end of a request."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return call


def releasing(function: Callable[..., T]) -> Callable[..., T]:
    """User code that may have used the ORM: its thread keeps no connection afterwards."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return call


class Pool:
    """A bounded pool of threads, awaited from an event loop (contextvars travel along)."""

    def __init__(self, threads: int, name: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]] = closing):
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._wrap = wrap

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # The executor directly, in a copy of the caller's context (its span, for one): lighter
        # than asgiref's sync_to_async, whose thread-sensitive bookkeeping this does not need.
        call = functools.partial(contextvars.copy_context().run, self._wrap(function), *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)

    def bind(self, function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
        """`function` as a coroutine function that runs on this pool."""
        return functools.partial(self.run, function)


@functools.cache
def web_pool() -> Pool:
    """A web process's pool: requests' sync work (middleware, views) and the database reads
    of requests that wait on the event loop. Made on first use (never before a fork)."""
    return Pool(platform_settings().WEB_THREADS, "web")
