"""A lean load generator: one keep-alive HTTP/1.1 connection per worker thread.

The client shares the machine's cores with the platform, PostgreSQL and the fake model, so
it uses the standard library's `http.client` (no per-request client machinery) and does
little besides sending, reading and checking each response.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.cpu import CpuSample, sample

RUNS_PATH = "/api/v1/agents/bench/runs/"
TRANSPORT_ERRORS = (OSError, http.client.HTTPException, ValueError)


class Client:
    """JSON over one persistent connection; reconnects after a transport error."""

    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        data = json.dumps(body).encode() if body is not None else None
        try:
            self._connection.request(method, path, body=data, headers=self.headers)
            response = self._connection.getresponse()
            payload = response.read()
        except TRANSPORT_ERRORS:
            self.close()
            raise
        return response.status, (json.loads(payload) if payload else None)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


Check = Callable[[Client], str | None]  # one request; returns an error description or None


@dataclass(frozen=True)
class Outcome:
    seconds: float
    error: str | None


def timed(check: Check, client: Client) -> Outcome:
    start = time.perf_counter()
    try:
        error = check(client)
    except TRANSPORT_ERRORS as exc:
        error = f"{type(exc).__name__}: {exc}"
    return Outcome(time.perf_counter() - start, error)


def run_error(status: int, body: Any) -> str | None:
    """None for a 201 with a completed run; otherwise what went wrong."""
    if status != 201:
        return f"HTTP {status}: {json.dumps(body)[:200]}"
    if not isinstance(body, dict) or body.get("status") != "completed":
        run_status = body.get("status") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else body
        return f"run {run_status}: {json.dumps(error)[:200]}"
    return None


def new_session_run(client: Client) -> str | None:
    """POST a run without session_id: every run starts a new session."""
    return run_error(*client.request("POST", RUNS_PATH, {"input": "What is stored under key 42?"}))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN when there are no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Round:
    wall_seconds: float
    outcomes: list[Outcome]
    cpu: tuple[CpuSample, CpuSample] | None = None  # before and after the round

    @property
    def latencies(self) -> list[float]:
        return [o.seconds for o in self.outcomes if o.error is None]

    @property
    def errors(self) -> list[str]:
        return [o.error for o in self.outcomes if o.error is not None]

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall_seconds if self.wall_seconds else math.nan

    @property
    def platform_cpu_ms_per_run(self) -> float:
        """The platform's CPU time per request (its processes only: not PostgreSQL or the fake model)."""
        if self.cpu is None or not self.outcomes:
            return math.nan
        return (self.cpu[1].platform - self.cpu[0].platform) * 1000 / len(self.outcomes)

    @property
    def platform_cores(self) -> float:
        """How many cores the platform's processes kept busy on average (at most one per Daphne process)."""
        return math.nan if self.cpu is None else (self.cpu[1].platform - self.cpu[0].platform) / self.wall_seconds

    @property
    def machine_busy(self) -> float:
        """The share of all cores busy with anything (the platform, PostgreSQL, the client, other work)."""
        if self.cpu is None:
            return math.nan
        before, after = self.cpu
        return (after.busy - before.busy) / max(after.total - before.total, 1e-9)


def run_round(clients: list[Client], total: int, check: Check) -> Round:
    """`total` requests spread over one thread per client, each sending back to back."""
    tickets = itertools.count()  # next() on a count is atomic under the GIL
    outcomes: list[Outcome] = []

    def worker(client: Client) -> None:
        while next(tickets) < total:
            outcomes.append(timed(check, client))

    threads = [threading.Thread(target=worker, args=(client,), daemon=True) for client in clients]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Round(time.perf_counter() - start, outcomes)


@dataclass
class LevelResult:
    concurrency: int
    rounds: list[Round] = field(default_factory=list)

    def median(self, value: Callable[[Round], float]) -> float:
        return statistics.median(value(r) for r in self.rounds)

    @property
    def runs_per_second(self) -> float:
        return self.median(lambda r: r.throughput)

    @property
    def platform_cpu_ms_per_run(self) -> float:
        return self.median(lambda r: r.platform_cpu_ms_per_run)

    @property
    def platform_cores(self) -> float:
        return self.median(lambda r: r.platform_cores)

    @property
    def machine_busy(self) -> float:
        return self.median(lambda r: r.machine_busy)

    @property
    def p50_ms(self) -> float:
        return self.median(lambda r: percentile(r.latencies, 50) * 1000)

    @property
    def p99_ms(self) -> float:
        return self.median(lambda r: percentile(r.latencies, 99) * 1000)

    @property
    def requests(self) -> int:
        return sum(len(r.outcomes) for r in self.rounds)

    @property
    def errors(self) -> list[str]:
        return [e for r in self.rounds for e in r.errors]


def measured_round(clients: list[Client], total: int, check: Check, platform_pid: int) -> Round:
    before = sample(platform_pid)
    result = run_round(clients, total, check)
    result.cpu = (before, sample(platform_pid))
    return result


@dataclass(frozen=True)
class Target:
    base_url: str
    api_key: str
    platform_pid: int


def measure_level(
    target: Target, concurrency: int, rounds: int, per_round: int, check: Check = new_session_run
) -> LevelResult:
    """Warm up, then `rounds` rounds of `per_round` requests (new-session runs unless `check`
    says otherwise) at this concurrency."""
    clients = [Client(target.base_url, target.api_key) for _ in range(concurrency)]
    try:
        run_round(clients, max(2 * concurrency, per_round // 4), check)  # warm-up, not recorded
        result = LevelResult(concurrency)
        for _ in range(rounds):
            result.rounds.append(measured_round(clients, per_round, check, target.platform_pid))
        return result
    finally:
        for client in clients:
            client.close()
