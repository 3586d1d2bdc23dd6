"""Closed-loop readers: C clients in one asyncio process, each on its own keep-alive connection,
each reading a random session's history, then the next, until the measured window ends.

Every request ends in one of: a read (200 with the expected page), an HTTP status other
than 200 (named by status and the error `code` of the body, when it has one), a transport
error (refused, reset, ...) or a timeout (no answer within `timeout` seconds: the client
gives up and closes its connection). A client told 503 waits its Retry-After (at most
5 s); one that hit a transport error waits 0.5 s before it reconnects, as a client that
backs off would. After the window, no new request is sent and every one in flight is
waited for, so the tail is counted too.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bench.http_async import TRANSPORT_ERRORS, Connection, Head

RAMP_SECONDS = 1.0
MAX_RETRY_AFTER = 5.0
TRANSPORT_BACKOFF = 0.5
READ = "read"


@dataclass(frozen=True)
class Target:
    """What to read, and how to tell a good page: `check(body)` is None when it is one, else why not."""

    label: str
    host: str
    port: int
    paths: list[str]
    headers: dict[str, str]
    check: Callable[[Any], str | None]


@dataclass(frozen=True)
class Outcome:
    client: int
    started: float
    ended: float
    kind: str  # READ, "HTTP 503 overloaded", "transport: ConnectionResetError", "timeout (30 s)", ...


@dataclass(frozen=True)
class Phases:
    warmup: float
    window: float
    timeout: float  # a client gives up on a request after this long


@dataclass
class Level:
    clients: int
    warmup: float
    window: float
    window_start: float
    window_end: float
    drained_at: float = math.nan
    outcomes: list[Outcome] = field(default_factory=list)

    def _in_window(self, outcome: Outcome) -> bool:
        return self.window_start <= outcome.ended < self.window_end

    @property
    def reads_per_second(self) -> float:
        return sum(1 for o in self.outcomes if o.kind == READ and self._in_window(o)) / self.window

    @property
    def refusals_per_second(self) -> float:
        """503s answered within the window, per second."""
        return sum(1 for o in self.outcomes if o.kind.startswith("HTTP 503") and self._in_window(o)) / self.window

    @property
    def latencies(self) -> list[float]:
        """Of the reads that ended within the window, sorted."""
        return sorted(o.ended - o.started for o in self.outcomes if o.kind == READ and self._in_window(o))

    @property
    def refusal_latencies(self) -> list[float]:
        return sorted(o.ended - o.started for o in self.outcomes if o.kind.startswith("HTTP 503"))

    @property
    def errors(self) -> Counter[str]:
        """Every outcome but a read, over the whole level (warm-up and drain included)."""
        return Counter(o.kind for o in self.outcomes if o.kind != READ)

    @property
    def unanswered_clients(self) -> int:
        """Clients that got no HTTP answer at all (no read, no status) in the whole level."""
        answered = {o.client for o in self.outcomes if o.kind == READ or o.kind.startswith("HTTP")}
        return self.clients - len(answered)

    @property
    def unread_clients(self) -> int:
        """Clients that got no read in the whole level (a 503 each time, or nothing)."""
        return self.clients - len({o.client for o in self.outcomes if o.kind == READ})

    @property
    def fewest_unread(self) -> int:
        """Clients that would have had no read had every read of the level gone to a different
        client: the fewest any server answering this many reads could leave unread."""
        return max(0, self.clients - sum(1 for o in self.outcomes if o.kind == READ))

    @property
    def drain_seconds(self) -> float:
        return self.drained_at - self.window_end


def percentile(values: list[float], q: float) -> float:
    """Nearest rank over sorted values (q in 0..100); NaN when empty."""
    if not values:
        return math.nan
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


def _error_code(body: bytes) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return str(error.get("code", "")) if isinstance(error, dict) else ""


async def read_once(target: Target, conn: Connection, path: str) -> tuple[str, Head | None]:
    """One request: its outcome kind, and the response head when there was one."""
    head = await conn.send("GET", path, None, target.headers)
    body = await conn.body(head)
    if head.status != 200:
        return f"HTTP {head.status} {_error_code(body)}".rstrip(), head
    problem = target.check(json.loads(body))
    return (READ if problem is None else f"wrong page: {problem}"), head


async def attempt(target: Target, conn: Connection, path: str, timeout: float) -> tuple[str, Head | None]:
    try:
        async with asyncio.timeout(timeout):
            return await read_once(target, conn, path)
    except TimeoutError:
        conn.close()
        return f"timeout ({timeout:g} s)", None
    except TRANSPORT_ERRORS as exc:
        conn.close()
        return f"transport: {type(exc).__name__}", None


def _pause(kind: str, head: Head | None) -> float:
    if head is not None and head.status == 503:
        try:
            return min(float(head.headers.get("retry-after", "1")), MAX_RETRY_AFTER)
        except ValueError:
            return 1.0
    return TRANSPORT_BACKOFF if kind.startswith("transport") else 0.0


async def _client(index: int, target: Target, stop_at: float, timeout: float, level: Level) -> None:
    loop, conn, rng = asyncio.get_running_loop(), Connection(target.host, target.port), random.Random(index)
    await asyncio.sleep(RAMP_SECONDS * index / level.clients)
    try:
        while loop.time() < stop_at:
            started = loop.time()
            kind, head = await attempt(target, conn, rng.choice(target.paths), timeout)
            level.outcomes.append(Outcome(index, started, loop.time(), kind))
            if pause := _pause(kind, head):
                await asyncio.sleep(pause)
    finally:
        conn.close()


Sampler = Callable[[asyncio.Event], Coroutine[Any, Any, None]]  # samples until the event is set


async def run_level(target: Target, clients: int, phases: Phases, sampler: Sampler) -> Level:
    """Warm-up, the measured window (with `sampler` running through it), then the drain."""
    now = asyncio.get_running_loop().time()
    level = Level(clients, phases.warmup, phases.window, now + phases.warmup, now + phases.warmup + phases.window)
    tasks = [asyncio.create_task(_client(i, target, level.window_end, phases.timeout, level)) for i in range(clients)]
    await asyncio.sleep(phases.warmup)
    window_over = asyncio.Event()
    sampling = asyncio.create_task(sampler(window_over))
    await asyncio.sleep(max(0.0, level.window_end - asyncio.get_running_loop().time()))
    window_over.set()
    await asyncio.gather(*tasks)
    level.drained_at = asyncio.get_running_loop().time()
    await sampling
    return level
