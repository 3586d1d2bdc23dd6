"""Event latency over WebSocket: from the worker's write of an event to its receipt by each watcher.

Many watchers are connected, several per session. The first watcher of each session also
drives it: it sends `run` messages, one run at a time per session, and `concurrency`
sessions have a run at once (each waits for its run's final event before the next).
Every event a watcher receives carries `created_at`, stamped by the worker when it writes
the event (just before the INSERT and the commit, then the publish); the latency is the
watcher's receive time minus `created_at` (one machine, one clock). At the end each
watcher's events are compared with what the database stored for its session's runs:
every event, once, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.load import percentile
from bench.stack import log
from bench.ws import CLIENT_ERRORS, close_all, open_many

FINAL_TYPES = {"run.completed", "run.failed", "run.requires_approval", "run.cancelled"}
RUN_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 40.0  # longer than the consumer's 15 s heartbeat, which reads back anything the layer lost


@dataclass(frozen=True)
class Delivery:
    run_id: str
    seq: int
    type: str
    latency_ms: float


class Watcher:
    """One connection on a session: records every run event it receives, in order."""

    def __init__(self, session_id: str, connection: ClientConnection) -> None:
        self.session_id, self.connection = session_id, connection
        self.deliveries: list[Delivery] = []
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # run.accepted, error, ...
        self.ended: dict[str, asyncio.Event] = {}
        self.reader = asyncio.create_task(self._read())

    def run_ended(self, run_id: str) -> asyncio.Event:
        return self.ended.setdefault(run_id, asyncio.Event())

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                received = time.time()
                message = json.loads(raw)
                if "seq" not in message:
                    self.replies.put_nowait(message)
                    continue
                created = datetime.fromisoformat(message["created_at"]).timestamp()
                run_id, kind = message["run_id"], message["type"]
                self.deliveries.append(Delivery(run_id, message["seq"], kind, (received - created) * 1000))
                if kind in FINAL_TYPES:
                    self.run_ended(run_id).set()
        except ConnectionClosed:
            return

    async def run(self, text: str) -> str:
        """Start a run on this session; wait for its final event; its id."""
        await self.connection.send(json.dumps({"type": "run", "input": text}))
        reply = await asyncio.wait_for(self.replies.get(), RUN_TIMEOUT)
        if reply.get("type") != "run.accepted":
            raise RuntimeError(f"run refused: {json.dumps(reply)[:200]}")
        run_id = str(reply["run_id"])
        await asyncio.wait_for(self.run_ended(run_id).wait(), RUN_TIMEOUT)
        return run_id


@dataclass
class Level:
    concurrency: int
    runs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms, default=float("nan"))


@dataclass
class Check:
    """Each watcher's events against the database's, for its session."""

    expected: int = 0  # deliveries owed: stored events x watchers of their session
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    out_of_order: int = 0  # watchers whose events came in another order than stored
    exact: int = 0  # watchers that got exactly the stored sequence
    watchers: int = 0


@dataclass
class LatencyResult:
    watchers: int
    sessions: int
    connect_errors: list[str]
    levels: list[Level]
    check: Check


async def _drive(level: Level, drivers: Sequence[Watcher], runs: int) -> None:
    """`runs` runs over the drivers' sessions, `level.concurrency` at a time, one per session at a time."""
    tickets = itertools.count()

    async def lane(own: Sequence[Watcher]) -> None:
        for driver in itertools.cycle(own):
            if next(tickets) >= runs:
                return
            try:
                level.runs.append(await driver.run("What is stored under key 42?"))
            except (*CLIENT_ERRORS, RuntimeError) as exc:
                level.errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    await asyncio.gather(*(lane(drivers[i :: level.concurrency]) for i in range(level.concurrency)))
    level.seconds = time.perf_counter() - started


def stored_events(database_url: str, session_ids: Sequence[str]) -> dict[str, list[tuple[str, int]]]:
    """Each session's run events as stored: (run id, seq), runs in creation order."""
    found: dict[str, list[tuple[str, int]]] = {s: [] for s in session_ids}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT r.session_id::text, e.run_id::text, e.seq FROM agents_runevent e "
            "JOIN agents_run r ON r.id = e.run_id WHERE r.session_id = ANY(%s::uuid[]) "
            "ORDER BY r.session_id, r.created_at, r.id, e.seq",
            (list(session_ids),),
        ).fetchall()
    for session_id, run_id, seq in rows:
        found[session_id].append((run_id, seq))
    return found


async def _all_delivered(watchers: Sequence[Watcher], expected: dict[str, list[tuple[str, int]]]) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline:
        if all(len(w.deliveries) >= len(expected[w.session_id]) for w in watchers):
            return
        await asyncio.sleep(0.2)


def check(watchers: Sequence[Watcher], expected: dict[str, list[tuple[str, int]]]) -> Check:
    result = Check(watchers=len(watchers))
    for watcher in watchers:
        want = expected[watcher.session_id]
        got = [(d.run_id, d.seq) for d in watcher.deliveries]
        wanted, unique = set(want), set(got)
        result.expected += len(want)
        result.delivered += len(got)
        result.lost += len(wanted - unique)
        result.duplicated += len(got) - len(unique)
        result.unexpected += len(unique - wanted)
        first_seen = [event for event in dict.fromkeys(got) if event in wanted]
        result.out_of_order += first_seen != [event for event in want if event in unique]
        result.exact += got == want
    return result


async def measure_latency(
    urls: Sequence[tuple[str, str]], api_key: str, database_url: str, levels: Sequence[tuple[int, int]]
) -> LatencyResult:
    """`urls`: (session id, WebSocket URL) per watcher; `levels`: (concurrency, runs) in turn."""
    opened = await open_many([url for _, url in urls], api_key, expect_ready=True)
    if opened.errors:
        await close_all(opened.connections)
        return LatencyResult(len(urls), 0, opened.errors, [], Check())
    watchers = [Watcher(session_id, c) for (session_id, _), c in zip(urls, opened.connections, strict=True)]
    first: dict[str, Watcher] = {}
    for watcher in watchers:
        first.setdefault(watcher.session_id, watcher)
    drivers = list(first.values())  # the first watcher of each session also starts its runs
    log(f"  {len(watchers):,} watchers on {len(drivers):,} sessions, connected in {opened.seconds:.1f}s")
    results = []
    try:
        for concurrency, runs in levels:
            level = Level(concurrency)
            await _drive(level, drivers, runs)
            results.append(level)
            log(f"  {len(level.runs)} runs at concurrency {concurrency} in {level.seconds:.1f}s")
        expected = stored_events(database_url, [d.session_id for d in drivers])
        await _all_delivered(watchers, expected)
    finally:
        await close_all([w.connection for w in watchers])
        await asyncio.gather(*(w.reader for w in watchers), return_exceptions=True)
    for level in results:
        ids = set(level.runs)
        level.latencies_ms = [d.latency_ms for w in watchers for d in w.deliveries if d.run_id in ids]
    return LatencyResult(len(watchers), len(drivers), [], results, check(watchers, expected))
