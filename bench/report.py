"""The machine and software the numbers came from, and the Markdown results."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import psycopg

from bench.floor import FloorResults
from bench.history import Timings
from bench.idle import IdleResult
from bench.load import LevelResult
from bench.streaming import StreamingConfig, StreamingResults
from bench.streaming_report import DAPHNE_ALONE_ISSUE_KIB, num, render_streaming, ttfb_added_ms

PEER_C1_RUNS, PEER_C1_P50_MS, PEER_HIGH_RUNS = 100.0, 9.0, (100.0, 150.0)
HISTORY_TARGET_RATIO = 1.5
RUNS_HEADER = (
    "| Concurrency | Requests/round | Runs/s (median) | Runs/s (min-max) | p50 ms | p99 ms | Errors "
    "| Platform CPU ms/run | Platform cores | Machine busy |"
)
SETUP = (
    "One machine: `manage.py up` (its default: one Daphne process per core; one Celery worker, 8 run threads), "
    "PostgreSQL, Redis, the fake model server (`one-tool-call`: 2 model calls + 1 tool call per run) and the load "
    "client share the cores."
)
STREAMING_SETUP = (
    "Streaming: WebSocket clients connect to one more Daphne process started by the benchmark, on the same "
    "PostgreSQL and Redis; the runs they start execute on `up`'s worker."
)


@dataclass(frozen=True)
class Environment:
    when: str
    cores: int
    cpu: str
    system: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    python: str
    django: str
    daphne: str
    websockets: str
    postgres: str
    commit: str
    minutes: float


@dataclass(frozen=True)
class Config:
    name: str
    rounds: int
    per_round: dict[int, int]
    history_samples: int
    append_samples: int
    streaming: StreamingConfig


@dataclass
class Results:
    config: Config
    levels: list[LevelResult] = field(default_factory=list)
    history: dict[int, Timings] = field(default_factory=dict)
    append: dict[int, Timings] = field(default_factory=dict)
    streaming: StreamingResults | None = None
    floor: FloorResults | None = None


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def _postgres(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('fsync'), "
            "current_setting('synchronous_commit'), current_setting('full_page_writes')"
        ).fetchone()
    assert row is not None
    return f"{row[0]} (fsync={row[1]}, synchronous_commit={row[2]}, full_page_writes={row[3]})"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=30)


def code_commit() -> str:
    """The code measured: HEAD, and whether files outside bench/ had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = _git(root, "rev-parse", "--short", "HEAD")
        status = _git(root, "status", "--porcelain")
    except OSError:
        return "unknown (no git)"
    dirty = any(line[3:] and not line[3:].startswith("bench/") for line in status.stdout.splitlines())
    return f"{head.stdout.strip() or 'unknown'}{' + uncommitted changes' if dirty else ''}"


def environment(database_url: str, load_before: tuple[float, float, float], started: float) -> Environment:
    """`started` is the benchmark's start on the time.monotonic() clock."""
    return Environment(
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=len(os.sched_getaffinity(0)),
        cpu=cpu_model(),
        system=platform.platform(),
        load_before=load_before,
        load_after=os.getloadavg(),
        python=platform.python_version(),
        django=version("django"),
        daphne=version("daphne"),
        websockets=version("websockets"),
        postgres=_postgres(database_url),
        commit=code_commit(),
        minutes=(time.monotonic() - started) / 60,
    )


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def _errors(errors: list[str], requests: int) -> str:
    return f"{len(errors)} / {requests:,}"


def _environment_md(env: Environment, results: Results) -> list[str]:
    config = results.config
    lines = [
        f"## agentplatform benchmark ({config.name}, {env.when})",
        "",
        f"- Machine: {env.cores} cores (nproc), {env.cpu}, {env.system}",
        f"- Load average 1/5/15 min: before {_load(env.load_before)}, after {_load(env.load_after)}",
        f"- Code: commit {env.commit}",
        (
            f"- Python {env.python}, Django {env.django}, Daphne {env.daphne}, PostgreSQL {env.postgres}, "
            f"websockets {env.websockets} (client)"
        ),
        f"- {SETUP}",
    ]
    if results.streaming is not None:
        lines.append(f"- {STREAMING_SETUP}")
    if results.levels:
        rounds = f"{config.rounds} rounds per concurrency level after a warm-up"
        lines.append(f"- {rounds}; runs/s, p50 and p99 are medians of rounds.")
    return [*lines, f"- The benchmark took {env.minutes:.1f} min."]


def _runs_md(results: Results) -> list[str]:
    lines = [
        "",
        "### Runs: `POST /api/v1/agents/bench/runs/` (a new session each run)",
        "",
        RUNS_HEADER,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in results.levels:
        spread = [r.throughput for r in level.rounds]
        lines.append(
            f"| {level.concurrency} | {results.config.per_round[level.concurrency]:,} | "
            f"{num(level.runs_per_second)} | {num(min(spread))}-{num(max(spread))} | "
            f"{num(level.p50_ms)} | {num(level.p99_ms)} | {_errors(level.errors, level.requests)} | "
            f"{num(level.platform_cpu_ms_per_run)} | {num(level.platform_cores, 2)} | {_pct(level.machine_busy)} |"
        )
    return [*lines, "", _peer_line(results.levels)]


def _peer_line(levels: list[LevelResult]) -> str:
    by_c = {level.concurrency: level for level in levels}
    c1 = by_c.get(1)
    here_c1 = f"{num(c1.runs_per_second)} runs/s at C=1 (p50 {num(c1.p50_ms)} ms)" if c1 else "C=1 not measured"
    high = [by_c[c] for c in sorted(by_c) if c > 1]
    here_high = ", ".join(f"{num(level.runs_per_second)} at C={level.concurrency}" for level in high)
    share = f"{c1.runs_per_second / PEER_C1_RUNS:.0%} of the peers' C=1 throughput" if c1 else ""
    return (
        f"**vs peers** (~{PEER_C1_RUNS:.0f} runs/s at C=1 with p50 {PEER_C1_P50_MS:.0f} ms; "
        f"~{PEER_HIGH_RUNS[0]:.0f}-{PEER_HIGH_RUNS[1]:.0f} runs/s at C=8/32): "
        f"here {here_c1}; {here_high} runs/s; {share}."
    )


def _ratio(timings: dict[int, Timings]) -> float:
    return timings[max(timings)].median_ms / timings[min(timings)].median_ms


def _by_session_size(title: str, counted: str, timings: dict[int, Timings]) -> tuple[list[str], float, str]:
    """A table of timings by session length, the largest-to-smallest ratio, and the sizes compared."""
    lines = ["", f"### {title}", "", f"| Messages in session | {counted} | median ms | p99 ms | Errors |"]
    lines.append("|---:|---:|---:|---:|---:|")
    for size, t in timings.items():
        lines.append(
            f"| {size:,} | {len(t.outcomes)} | {num(t.median_ms, 2)} | {num(t.p99_ms, 2)} | "
            f"{_errors(t.errors, len(t.outcomes))} |"
        )
    return lines, _ratio(timings), f"{max(timings):,} vs {min(timings):,}"


def _history_md(results: Results) -> list[str]:
    title = "History: `GET /api/v1/sessions/{id}/messages/?order=desc&limit=50` (the last 50 messages)"
    lines, ratio, sizes = _by_session_size(title, "Requests", results.history)
    verdict = "flat: met" if ratio <= HISTORY_TARGET_RATIO else "NOT met"
    return [*lines, "", f"Median {sizes} messages: **{ratio:.2f}x** (target <= {HISTORY_TARGET_RATIO}x, {verdict})."]


def _append_md(results: Results) -> list[str]:
    title = "Appending a run to a long session: `POST /api/v1/agents/bench/runs/` with `session_id`"
    lines, ratio, sizes = _by_session_size(title, "Runs", results.append)
    verdict = "does not grow" if ratio <= HISTORY_TARGET_RATIO else "GROWS with session length"
    return [*lines, "", f"Median {sizes} messages: **{ratio:.2f}x** ({verdict})."]


def _error_samples_md(results: Results) -> list[str]:
    errors = [e for level in results.levels for e in level.errors]
    errors += [e for t in (*results.history.values(), *results.append.values()) for e in t.errors]
    if not errors:
        return []
    common = Counter(errors).most_common(5)
    return ["", "Most common errors:", "", *(f"- {count} x `{error}`" for error, count in common)]


def _glance_md(results: Results, streaming: StreamingResults) -> list[str]:
    """The issue-3 figures side by side, with the runs measured through Celery in this same run."""
    ours, bare, latency = streaming.platform, streaming.bare, streaming.latency
    rows = [("Idle WebSockets on one Daphne process", "10,000 without errors", _held(ours))]
    if ours.steps and bare.steps:
        memory = f"{num(ours.kib_per_connection(ours.steps[-1]))} (Daphne alone here: "
        memory += f"{num(bare.kib_per_connection(bare.steps[-1]))})"
        rows.append(("Memory per idle WebSocket, KiB", f"Daphne alone: about {DAPHNE_ALONE_ISSUE_KIB:.0f}", memory))
    for level in latency.levels:
        measure = f"Event latency p50 / p99, {latency.watchers:,} watchers, {level.concurrency} run(s) at once"
        rows.append((measure, "", f"{num(level.p50_ms, 1)} / {num(level.p99_ms, 1)} ms"))
    added = f"{num(ttfb_added_ms(streaming.ttfb))} ms"
    rows.append(("SSE time to the first event added over the fake model's", "", added))
    by_c = {level.concurrency: level for level in results.levels}
    for c in (c for c in (8, 32) if c in by_c):
        runs = by_c[c]
        target = f"core issue: {PEER_HIGH_RUNS[0]:.0f}-{PEER_HIGH_RUNS[1]:.0f}"
        share = f"{runs.runs_per_second / PEER_HIGH_RUNS[0]:.0%} of {PEER_HIGH_RUNS[0]:.0f}"
        here = f"{num(runs.runs_per_second)} (p50 {num(runs.p50_ms)} ms; {share})"
        rows.append((f"Runs/s, wait mode through Celery, C={c}", target, here))
    lines = ["", "### Issue 3 at a glance (this run)", "", "| Measure | Target / reference | Here |", "|---|---|---|"]
    return lines + [f"| {measure} | {target} | {here} |" for measure, target, here in rows]


def _held(result: IdleResult) -> str:
    return f"{result.held:,} held; {result.errors} failed handshakes (retried), {result.not_opened} not opened"


def render(env: Environment, results: Results) -> str:
    lines = _environment_md(env, results)
    if results.streaming is not None:
        lines += _glance_md(results, results.streaming)
    if results.levels:
        lines += _runs_md(results)
    if results.history:
        lines += _history_md(results) + _append_md(results)
    if results.streaming is not None:
        lines += render_streaming(results.streaming)
    lines += _error_samples_md(results)
    return "\n".join(lines) + "\n"
