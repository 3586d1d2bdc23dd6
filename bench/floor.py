"""What the fixed stack costs before a run does anything: the floor under the runs table.

Measured on the same platform as the runs, right after them, at concurrency 1 and 8:

- `GET /api/v1/health/`: Daphne and Django (no authentication, no database);
- `GET /api/v1/agents/bench/`: plus the API key, three queries and a DRF serializer, the
  cheapest authenticated request;
- `POST /api/v1/agents/bench-empty/runs/`: a whole run whose turn answers at once (no model
  call, no tool): the request, the session and run rows, the task, the claim, the user
  message, the answer, the events and reading the run back: what a run costs the platform
  itself, whatever the agent does;
- a Celery task that does nothing (Celery's own `celery.accumulate`), sent to the runs queue
  and executed by `up`'s worker: what one hop through the broker costs the worker and the
  sender, and how many such tasks one worker executes per second.

A run is at least one authenticated request, one task and, in the worker, two model calls,
one tool call and its durable writes; these rows say how much of a run's cost is the stack.
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from celery import Celery

from bench.cpu import process_cpu, process_tree
from bench.load import Check, Client, LevelResult, Target, measure_level, run_error
from bench.stack import Stack
from bench.streaming_report import num

LEVELS = (1, 8)
QUEUE = "runs"  # Queue.RUNS: the queue `up`'s worker executes runs from
DRAIN_TIMEOUT = 120.0


def _get(path: str) -> Check:
    def check(client: Client) -> str | None:
        status, body = client.request("GET", path)
        return None if status == 200 else f"HTTP {status}: {str(body)[:200]}"

    return check


def _empty_run(client: Client) -> str | None:
    return run_error(*client.request("POST", "/api/v1/agents/bench-empty/runs/", {"input": "Anything."}))


REQUESTS: tuple[tuple[str, str, Check], ...] = (
    ("health", "`GET /api/v1/health/` (Daphne + Django)", _get("/api/v1/health/")),
    ("agent", "`GET /api/v1/agents/bench/` (+ API key, 3 queries, a serializer)", _get("/api/v1/agents/bench/")),
    ("empty", "`POST /api/v1/agents/bench-empty/runs/` (a run that answers at once)", _empty_run),
)


@dataclass
class TaskRound:
    tasks: int
    seconds: float  # from the first send until the worker has acknowledged the last task
    worker_cpu: float  # the worker process's CPU seconds meanwhile
    sender_cpu: float  # this process's CPU seconds spent sending

    @property
    def per_second(self) -> float:
        return self.tasks / self.seconds

    @property
    def worker_ms(self) -> float:
        return self.worker_cpu * 1000 / self.tasks

    @property
    def sender_ms(self) -> float:
        return self.sender_cpu * 1000 / self.tasks


@dataclass
class FloorResults:
    requests: dict[tuple[str, int], LevelResult] = field(default_factory=dict)
    tasks: list[TaskRound] = field(default_factory=list)


def _worker_pid(platform_pid: int) -> int:
    for pid in process_tree(platform_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"celery" in b" ".join(argv) and b"worker" in argv:
            return pid
    raise RuntimeError("no Celery worker under the platform's process")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _task_round(app: Celery, broker: redis.Redis, worker_pid: int, tasks: int) -> TaskRound:
    worker_before, started = process_cpu(worker_pid), time.perf_counter()
    sender_before = _own_cpu()
    for index in range(tasks):
        app.send_task("celery.accumulate", args=[index], queue=QUEUE)
    sender_cpu = _own_cpu() - sender_before
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while broker.llen(QUEUE) or broker.hlen("unacked"):  # kombu's Redis transport: waiting, then unacknowledged
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not drain {tasks} no-op tasks in {DRAIN_TIMEOUT:.0f} s")
        time.sleep(0.002)
    seconds = time.perf_counter() - started
    return TaskRound(tasks, seconds, process_cpu(worker_pid) - worker_before, sender_cpu)


def measure_floor(stack: Stack, rounds: int, per_round: int) -> FloorResults:
    results = FloorResults()
    target = Target(stack.base_url, stack.api_key, stack.platform_pid)
    for name, _title, check in REQUESTS:
        for concurrency in LEVELS:
            results.requests[name, concurrency] = measure_level(target, concurrency, rounds, per_round, check)
    app = Celery("bench-floor", broker=stack.env["REDIS_URL"])
    broker = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        worker = _worker_pid(stack.platform_pid)
        _task_round(app, broker, worker, per_round // 4)  # warm-up
        results.tasks = [_task_round(app, broker, worker, per_round) for _ in range(rounds)]
    finally:
        broker.close()
        app.close()
    return results


def render(floor: FloorResults, runs: list[LevelResult]) -> str:
    lines = [
        "",
        "### The floor: what the stack costs before a run does anything",
        "",
        "| Request | Concurrency | Per second (median) | p50 ms | Platform CPU ms/request |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, title, _check in REQUESTS:
        for concurrency in LEVELS:
            level = floor.requests[name, concurrency]
            lines.append(
                f"| {title} | {concurrency} | {num(level.runs_per_second)} | {num(level.p50_ms)} "
                f"| {num(level.platform_cpu_ms_per_run)} |"
            )
    for level in runs:
        if level.concurrency in LEVELS:
            lines.append(
                f"| `POST /api/v1/agents/bench/runs/` (a whole run, from the runs table) | {level.concurrency} "
                f"| {num(level.runs_per_second)} | {num(level.p50_ms)} | {num(level.platform_cpu_ms_per_run)} |"
            )
    if floor.tasks:
        median = statistics.median
        lines += [
            "",
            "| Celery task that does nothing (`celery.accumulate` on the runs queue) | Median of rounds |",
            "|---|---:|",
            f"| Tasks per second, one worker | {num(median(r.per_second for r in floor.tasks))} |",
            f"| Worker CPU ms per task | {num(median(r.worker_ms for r in floor.tasks), 2)} |",
            f"| Sender CPU ms per task (`send_task`) | {num(median(r.sender_ms for r in floor.tasks), 2)} |",
        ]
    return "\n".join(lines) + "\n"
