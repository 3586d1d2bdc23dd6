"""Where a run's steps execute: on an event loop, with sync work in bounded thread pools.

A run spends almost all its life waiting on its model, its tools or its context sources.
Its turn is a coroutine, so that waiting holds no thread and no database connection; the
sync work it does (database steps, sync tools, sync `run()` overrides) goes to pools whose
sizes bound the threads and connections a process uses, whatever the number of runs.

Two runtimes execute the same coroutine:

- `Engine` (a Celery worker process): one event loop in a thread of its own carries up to
  `RUN_CONCURRENCY` runs at once. A Celery task claims nothing itself: it waits for a free
  slot (the back-pressure that keeps the broker holding what the process cannot carry) and
  hands the run over. Database steps run on a pool sized like the connection pool, each
  giving its connection back; one heartbeat renews the leases of every run in flight.
- `Inline`: the calling thread executes the run to its end, doing the database steps
  itself (on its own connection, inside its transaction if it has one), for scripts and
  tests that have a thread to give.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol, TypeVar
from uuid import UUID

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connection

from agentplatform import notify
from agentplatform.conf import platform_settings
from agentplatform.pools import Pool, releasing
from agents.services import leases

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Runtime(Protocol):
    """What a run's coroutine needs from the process that executes it."""

    lasting: bool  # its event loop outlives the run (clients bound to a loop may be kept)

    async def db(self, function: Callable[..., T], *args: Any) -> T:
        """Run a database step (a sync function) where this runtime keeps its connections."""
        ...

    async def blocking(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run sync user code (a tool, a provider without `acomplete`) in a bounded pool."""
        ...

    async def turn(self, function: Callable[..., T], *args: Any) -> T:
        """Run a sync `run()` override: its own pool, so that its tools always find a thread."""
        ...

    def holding_lease(self, run_id: UUID) -> contextlib.AbstractAsyncContextManager[None]:
        """The run's lease is renewed (and its cancellation watched) while the block runs."""
        ...

    async def cancelled(self, run_id: UUID) -> bool:
        """Whether someone cancelled the run (checked at each step)."""
        ...


class Inline:
    """Executes one run in the calling thread, which does the database steps itself."""

    lasting = False  # a loop per run

    def __init__(self) -> None:
        self._pool = Pool(4, "inline-run", wrap=releasing)

    async def db(self, function: Callable[..., T], *args: Any) -> T:
        # Back on the thread that called `run` (asgiref's thread-sensitive mode).
        return await sync_to_async(function, thread_sensitive=True)(*args)

    async def blocking(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._pool.run(function, *args, **kwargs)

    async def turn(self, function: Callable[..., T], *args: Any) -> T:
        return await self.blocking(function, *args)

    @contextlib.asynccontextmanager
    async def holding_lease(self, run_id: UUID) -> AsyncIterator[None]:
        renewal = asyncio.create_task(self._renew(run_id))
        try:
            yield
        finally:
            renewal.cancel()

    async def _renew(self, run_id: UUID) -> None:
        while True:
            await asyncio.sleep(platform_settings().RUN_LEASE_SECONDS / 3)
            await self.db(leases.renew, [run_id])

    async def cancelled(self, run_id: UUID) -> bool:
        return await self.db(notify.flag_raised, f"cancel:{run_id}")

    def run(self, work: Callable[[Inline], Coroutine[Any, Any, T]]) -> T:
        try:
            return async_to_sync(work)(self)
        finally:
            self._pool.shutdown()


class Engine:
    """The worker process's event loop and pools (see the module's docstring)."""

    lasting = True

    def __init__(self, *, concurrency: int, db_threads: int, sync_threads: int) -> None:
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._db = Pool(db_threads, "run-db")
        self._tools = Pool(sync_threads, "run-sync", wrap=releasing)
        self._turns = Pool(sync_threads, "run-turn", wrap=releasing)
        self._leased: set[UUID] = set()
        self._flags = notify.Flags(settings.REDIS_URL, lambda: [f"cancel:{run_id}" for run_id in self._leased])
        self._running = 0
        self._carried: set[asyncio.Task[None]] = set()
        self._idle = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="run-engine", daemon=True)
        self._thread.start()
        atexit.register(self.loop.call_soon_threadsafe, self.loop.stop)  # quiet, before Redis and logs go

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        # Held here: the loop keeps only weak references to its tasks.
        self._services = [self.loop.create_task(self._heartbeat()), self.loop.create_task(self._flags.listen())]
        self.loop.run_forever()

    # -- handing runs over (called from Celery's threads) --

    def submit(self, work: Callable[[Engine], Coroutine[Any, Any, Any]], *, wait: float | None = None) -> bool:
        """Start `work` on the loop once a slot is free; False if none freed within `wait` s."""
        if not self._slots.acquire(timeout=wait if wait is not None else -1):
            return False
        with self._idle:
            self._running += 1
        # A task started on the loop, not `run_coroutine_threadsafe`: no future (and its
        # condition variable) per run for a result nobody reads.
        self.loop.call_soon_threadsafe(self._start, work)
        return True

    def _start(self, work: Callable[[Engine], Coroutine[Any, Any, Any]]) -> None:
        task = self.loop.create_task(self._carry(work))
        self._carried.add(task)  # the loop keeps only weak references to its tasks
        task.add_done_callback(self._done)

    async def _carry(self, work: Callable[[Engine], Coroutine[Any, Any, Any]]) -> None:
        try:
            await work(self)
        except Exception:  # a bug in a run's execution must not end the loop's other runs
            logger.exception("a run's execution failed")

    def _done(self, task: asyncio.Task[None]) -> None:
        self._carried.discard(task)
        self._slots.release()
        with self._idle:
            self._running -= 1
            self._idle.notify_all()

    @property
    def in_flight(self) -> int:
        return self._running

    def drain(self, timeout: float) -> bool:
        """Wait until no run is in flight (a worker shutting down lets its runs finish)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # -- the Runtime protocol (on the loop) --

    async def db(self, function: Callable[..., T], *args: Any) -> T:
        return await self._db.run(function, *args)

    async def blocking(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._tools.run(function, *args, **kwargs)

    async def turn(self, function: Callable[..., T], *args: Any) -> T:
        return await self._turns.run(function, *args)

    @contextlib.asynccontextmanager
    async def holding_lease(self, run_id: UUID) -> AsyncIterator[None]:
        self._leased.add(run_id)
        await self._flags.check(f"cancel:{run_id}")  # raised before the subscription heard of it
        try:
            yield
        finally:
            self._leased.discard(run_id)
            self._flags.forget(f"cancel:{run_id}")

    async def _heartbeat(self) -> None:
        """Every third of a lease, one UPDATE renews the leases of all runs in flight (the
        length is read at each tick of at most a second, so a new setting applies at once)."""
        renewed = time.monotonic()
        while True:
            interval = platform_settings().RUN_LEASE_SECONDS / 3
            await asyncio.sleep(min(interval, 1.0))
            if not self._leased or time.monotonic() - renewed < interval:
                continue
            renewed = time.monotonic()
            try:
                await self.db(leases.renew, list(self._leased))
            except Exception:  # the database is away: try again at the next beat
                logger.exception("renewing %d leases failed", len(self._leased))

    async def cancelled(self, run_id: UUID) -> bool:
        # One subscription hears every cancel: a check costs no round trip to Redis.
        return self._flags.raised(f"cancel:{run_id}")


class _Process:
    """The process's engine: made once, by whichever of Celery's threads needs it first."""

    lock = threading.Lock()
    engine: Engine | None = None


def started_engine() -> Engine | None:
    """This process's engine if it has one (a process that never ran a run has none)."""
    return _Process.engine


def engine() -> Engine:
    """This process's engine, started on first use (after any fork: never at import)."""
    with _Process.lock:
        if _Process.engine is None:
            conf = platform_settings()
            # SQLite takes one writer at a time: more threads would only wait in its busy handler.
            db_threads = 1 if connection.vendor == "sqlite" else conf.RUN_DB_THREADS
            _Process.engine = Engine(
                concurrency=conf.RUN_CONCURRENCY, db_threads=db_threads, sync_threads=conf.RUN_SYNC_THREADS
            )
        return _Process.engine
