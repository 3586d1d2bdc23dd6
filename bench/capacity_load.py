"""Closed-loop load at a fixed concurrency: C virtual users, one connection each, in one asyncio process.

Each user sends a run, waits for its outcome, and sends the next, until the measured window
ends; then no new run is sent and every run in flight is waited for (each within its
deadline). The users start spread over the first second of the warm-up.

- **Runs/s** counts the runs that finished successfully (`OK` or `FOLLOWED`) within the
  measured window, divided by its length: the steady rate, warm-up excluded. When a run takes
  longer than the window, the clients move in step and their runs finish together, so the
  window can miss them: the whole level's rate (every run done / the level's duration) is
  given next to it.
- **Latency, errors, 503s and 202s** are over the runs *sent* within the window, every one of
  them followed to its end (drain included), so a slow tail is not cut off by the window.

A user that gets a 503 waits its Retry-After (at most 5 s); one that gets a transport error
waits 0.5 s, as a client that backs off would, so that an unreachable server is not spun on.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bench.capacity_drivers import Attempt, Driver, Kind
from bench.http_async import TRANSPORT_ERRORS, Connection

RAMP_SECONDS = 1.0
MAX_RETRY_AFTER = 5.0
TRANSPORT_BACKOFF = 0.5


@dataclass(frozen=True)
class Phases:
    warmup: float
    window: float
    deadline: float  # per run: sending, waiting, streaming, polling after a 202


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    attempt: Attempt

    @property
    def succeeded(self) -> bool:
        return self.attempt.kind in (Kind.OK, Kind.FOLLOWED)


@dataclass
class LevelLoad:
    """The outcomes of one level, split by the window."""

    users: int
    phases: Phases
    window_start: float
    window_end: float
    drained_at: float
    outcomes: list[Outcome] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0  # the most runs in flight at once: C, unless the client itself held some back

    @property
    def sent_in_window(self) -> list[Outcome]:
        return [o for o in self.outcomes if self.window_start <= o.started < self.window_end]

    @property
    def runs_per_second(self) -> float:
        done = [o for o in self.outcomes if o.succeeded and self.window_start <= o.ended < self.window_end]
        return len(done) / self.phases.window

    @property
    def level_runs_per_second(self) -> float:
        """Every run done, from the first sent to the end of the drain: the rate when clients move in step
        (all sent at once, all done together), which a window shorter than a run's latency misses."""
        done = sum(1 for o in self.outcomes if o.succeeded)
        return done / (self.drained_at - (self.window_start - self.phases.warmup))

    @property
    def latencies(self) -> list[float]:
        return sorted(o.ended - o.started for o in self.sent_in_window if o.succeeded)

    def count(self, kind: Kind) -> int:
        return sum(1 for o in self.sent_in_window if o.attempt.kind is kind)

    @property
    def errors(self) -> Counter[str]:
        return Counter(o.attempt.error or "?" for o in self.sent_in_window if o.attempt.kind is Kind.ERROR)

    @property
    def level_errors(self) -> int:
        """Errors among every run of the level, warm-up included."""
        return sum(1 for o in self.outcomes if o.attempt.kind is Kind.ERROR)

    @property
    def drain_seconds(self) -> float:
        return self.drained_at - self.window_end


def percentile(values: list[float], q: float) -> float:
    """Nearest rank over sorted values (q in 0..100); NaN when empty."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


async def _one(driver: Driver, conn: Connection, deadline: float) -> Attempt:
    try:
        async with asyncio.timeout(deadline):
            return await driver(conn)
    except TimeoutError:
        conn.close()
        return Attempt(Kind.ERROR, f"timeout ({deadline:g} s)")
    except TRANSPORT_ERRORS as exc:
        conn.close()
        return Attempt(Kind.ERROR, f"transport: {type(exc).__name__}")


async def _user(driver: Driver, conn: Connection, start_in: float, stop_at: float, load: LevelLoad) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start_in)
    try:
        while loop.time() < stop_at:
            started = loop.time()
            load.in_flight += 1
            load.peak_in_flight = max(load.peak_in_flight, load.in_flight)
            attempt = await _one(driver, conn, load.phases.deadline)
            load.in_flight -= 1
            load.outcomes.append(Outcome(started, attempt.done_at or loop.time(), attempt))
            if attempt.kind is Kind.OVERLOADED:
                await asyncio.sleep(min(attempt.retry_after, MAX_RETRY_AFTER))
            elif attempt.error and attempt.error.startswith("transport"):
                await asyncio.sleep(TRANSPORT_BACKOFF)
    finally:
        conn.close()


Sampler = Callable[[asyncio.Event], Coroutine[Any, Any, None]]  # samples until the event is set


async def run_level(
    driver: Driver, host: str, port: int, users: int, phases: Phases, *, sampler: Sampler | None = None
) -> LevelLoad:
    """Warm-up, the measured window (with `sampler` running through it), then the drain."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    load = LevelLoad(users, phases, now + phases.warmup, now + phases.warmup + phases.window, math.nan)
    tasks = [
        asyncio.create_task(_user(driver, Connection(host, port), RAMP_SECONDS * i / users, load.window_end, load))
        for i in range(users)
    ]
    await asyncio.sleep(phases.warmup)
    window_over = asyncio.Event()
    sampling = asyncio.create_task(sampler(window_over)) if sampler is not None else None
    await asyncio.sleep(max(0.0, load.window_end - loop.time()))
    window_over.set()
    await asyncio.gather(*tasks)
    load.drained_at = loop.time()
    if sampling is not None:
        await sampling
    return load
