"""Idle WebSocket connections: how many one Daphne process holds, and its memory per connection.

Connections are opened in steps (each new one waits for the server's first message when
the server sends one); after each step the server's VmRSS and open file descriptors are
read from /proc. All stay open to the end, are held idle for a while (across Daphne's
20 s ping), then closed; the server is then reopened to the largest step once more, so
that memory kept by closed connections (a leak) would show as growth on the second pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from bench.stack import log
from bench.ws import close_all, open_fds, open_many, rss_kib, still_open

WARMUP = 50
ATTEMPTS = 3  # a connection whose handshake failed is tried again, as a client would reconnect
SETTLE_SECONDS = 2.0
DRAIN_TIMEOUT = 60.0


@dataclass(frozen=True)
class IdleServer:
    name: str
    pid: int
    urls: Sequence[str]  # connection i goes to urls[i]
    api_key: str | None
    expect_ready: bool  # the server sends a first message (`session.ready`) once the connection is set up
    subscriptions: Callable[[], int] | None = None  # the channel layer's subscriptions in Redis, if it has one


@dataclass(frozen=True)
class Step:
    connections: int  # open after the step
    added: int  # opened in the step
    seconds: float  # to open them, retries included
    rss_kib: int
    fds: int
    errors: list[str]  # failed attempts (each retried, up to ATTEMPTS in all)
    not_opened: int  # connections that failed every attempt


@dataclass
class IdleResult:
    server: str
    baseline_kib: int
    baseline_fds: int
    steps: list[Step] = field(default_factory=list)
    hold_seconds: float = 0.0
    open_after_hold: int = 0
    rss_after_hold_kib: int = 0
    closed_kib: int = 0
    closed_fds: int = 0
    subscriptions_at_top: int | None = None
    unsubscribed: list[tuple[int, float]] = field(default_factory=list)  # after each close: (left, seconds)
    reopened: Step | None = None

    @property
    def held(self) -> int:
        return self.steps[-1].connections if self.steps else 0

    @property
    def errors(self) -> int:
        return sum(len(s.errors) for s in self.steps)

    @property
    def not_opened(self) -> int:
        return sum(s.not_opened for s in self.steps)

    def kib_per_connection(self, step: Step) -> float:
        """Memory growth per connection from the empty (warmed-up) server to this step."""
        return (step.rss_kib - self.baseline_kib) / step.connections if step.connections else float("nan")


async def _settled_sample(server: IdleServer) -> tuple[int, int]:
    await asyncio.sleep(SETTLE_SECONDS)
    return rss_kib(server.pid), open_fds(server.pid)


async def _step(server: IdleServer, held: list[ClientConnection], target: int) -> Step:
    urls = pending = list(server.urls[len(held) : target])
    errors: list[str] = []
    started = time.perf_counter()
    for _ in range(ATTEMPTS):
        opened = await open_many(pending, server.api_key, expect_ready=server.expect_ready)
        held.extend(opened.connections)
        errors += opened.errors
        pending = [url for url, _ in opened.failed]
        if not pending:
            break
    seconds = time.perf_counter() - started
    rss, fds = await _settled_sample(server)
    step = Step(len(held), len(urls), seconds, rss, fds, errors, len(pending))
    log(f"  {server.name}: {len(held):,} open ({len(errors)} failed attempts) in {seconds:.1f}s, RSS {rss:,} KiB")
    return step


async def _drained(server: IdleServer, floor: int | None) -> None:
    """Wait until the server has let go of closed connections' sockets: down to `floor` (and
    a margin for pooled database connections), or, with no floor known, until the count is steady."""
    deadline, previous = time.monotonic() + DRAIN_TIMEOUT, -1
    while time.monotonic() < deadline:
        current = open_fds(server.pid)
        if current == previous if floor is None else current <= floor + 10:
            return
        previous = current
        await asyncio.sleep(0.5)
    log(f"  {server.name}: still {open_fds(server.pid):,} open files after {DRAIN_TIMEOUT:g}s")


async def _unsubscribed(server: IdleServer, result: IdleResult) -> None:
    """Wait for the server to drop its Redis subscriptions (two per connection: its channel and its
    group): until none is left, or the count has not moved for 5 s."""
    if server.subscriptions is None:
        return
    started, deadline = time.monotonic(), time.monotonic() + DRAIN_TIMEOUT
    previous, steady = server.subscriptions(), 0
    while previous and time.monotonic() < deadline and steady < 10:
        await asyncio.sleep(0.5)
        current = server.subscriptions()
        steady, previous = (steady + 1 if current == previous else 0), current
    result.unsubscribed.append((previous, time.monotonic() - started))


async def measure_idle(server: IdleServer, steps: Sequence[int], hold_seconds: float, *, reopen: bool) -> IdleResult:
    warm = await open_many(server.urls[:WARMUP], server.api_key, expect_ready=server.expect_ready)
    await close_all(warm.connections)
    await _drained(server, None)
    baseline_kib, baseline_fds = await _settled_sample(server)
    result = IdleResult(server.name, baseline_kib, baseline_fds)
    held: list[ClientConnection] = []
    try:
        for target in steps:
            result.steps.append(await _step(server, held, target))
        if server.subscriptions is not None:
            result.subscriptions_at_top = server.subscriptions()
        await asyncio.sleep(hold_seconds)
        result.hold_seconds, result.open_after_hold = hold_seconds, still_open(held)
        result.rss_after_hold_kib = rss_kib(server.pid)
    finally:
        await close_all(held)
    await _drained(server, baseline_fds)
    await _unsubscribed(server, result)
    result.closed_kib, result.closed_fds = await _settled_sample(server)
    if reopen and steps:
        again: list[ClientConnection] = []
        try:
            result.reopened = await _step(server, again, max(steps))
        finally:
            await close_all(again)
        await _drained(server, baseline_fds)
        await _unsubscribed(server, result)
    return result
