"""The capacity section as Markdown: one row per server, mode and concurrency, the targets, the errors
by kind, and the memory of each server's processes at its peak."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass

from bench.capacity import CapacityResults, LevelResult
from bench.capacity_drivers import POLL_SECONDS, Kind
from bench.capacity_load import LevelLoad, percentile
from bench.capacity_probe import ProcessMemory
from bench.capacity_stack import MODEL_LATENCY
from bench.report import cpu_model
from bench.streaming_report import num

TARGET_RUNS_AT_64 = 40.0
TARGET_P50_AT_64 = 1.6
HEADER = (
    "| Server | Mode | C | Runs/s | of ideal | Runs/s (level) | p50 s | p99 s | Sent | 202 then done | 503 | Errors "
    "| RSS MiB | PSS MiB | DB conns (active) | Server cores | DB cores | Model cores | Client cores | Machine busy "
    "| Drain s |"
)


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu: str
    commit: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def machine(load_before: tuple[float, float, float], commit: str) -> Machine:
    return Machine(len(os.sched_getaffinity(0)), cpu_model(), commit, load_before, os.getloadavg())


def _cores(level: LevelResult, part: str) -> str:
    if part == "database" and level.peak.cpu is not None and not level.database_server:
        return "-"  # SQLite: inside the server's processes
    return num(level.peak.seconds(part) / level.load.phases.window, 2)


def _conns(level: LevelResult) -> str:
    peak = level.peak
    return f"{peak.db_connections}" + (f" ({peak.db_active})" if peak.db_active is not None else "")


def _row(level: LevelResult) -> str:
    load, peak = level.load, level.peak
    latencies = load.latencies
    sent = len(load.sent_in_window)
    cells = [
        level.target,
        level.mode,
        f"{level.users:,}",
        num(load.runs_per_second),
        f"{load.runs_per_second / level.users:.0%}",
        num(load.level_runs_per_second),
        num(percentile(latencies, 50), 2),
        num(percentile(latencies, 99), 2),
        f"{sent:,}",
        f"{load.count(Kind.FOLLOWED):,}",
        f"{load.count(Kind.OVERLOADED):,}",
        f"{sum(load.errors.values()):,}",
        num(peak.rss_kib / 1024, 0),
        num(peak.pss_kib / 1024, 0),
        _conns(level),
        _cores(level, "server"),
        _cores(level, "database"),
        _cores(level, "model"),
        _cores(level, "client"),
        f"{peak.machine_busy:.0%}" if not math.isnan(peak.machine_busy) else "n/a",
        num(load.drain_seconds, 0),
    ]
    return "| " + " | ".join(cells) + " |"


def _level(results: CapacityResults, target: str, mode: str, users: int) -> LevelResult | None:
    return next((r for r in results.levels if (r.target, r.mode, r.users) == (target, mode, users)), None)


def _verdict(ok: bool, text: str) -> str:
    return f"{'yes' if ok else '**no**'} ({text})"


def _figures(load: LevelLoad) -> tuple[float, int, str]:
    """Runs/s and errors for the targets: the window's, or, when no run finished within it (runs slower
    than the window, clients in step), the whole level's, saying so."""
    if load.runs_per_second > 0:
        errors = sum(load.errors.values())
        return load.runs_per_second, errors, f"{num(load.runs_per_second)} runs/s, {errors} errors"
    rate, errors = load.level_runs_per_second, load.level_errors
    return rate, errors, f"none done in the window; over the level {num(rate)} runs/s, {errors} errors"


def _targets(results: CapacityResults) -> list[str]:
    lines = [
        "",
        (
            f"Targets: at C=64 at least {TARGET_RUNS_AT_64:g} runs/s and p50 under {TARGET_P50_AT_64:g} s; "
            "at C=256 and C=1024 no errors and no fewer runs/s than at C=64."
        ),
        "",
        "| Server | Mode | C=64 runs/s | C=64 p50 | C=256 | C=1024 |",
        "|---|---|---|---|---|---|",
    ]
    for target, mode in dict.fromkeys((r.target, r.mode) for r in results.levels):
        base = _level(results, target, mode, 64)
        if base is None:
            continue
        p50 = percentile(base.load.latencies, 50)
        base_rate, _, _ = _figures(base.load)
        cells = [
            _verdict(base_rate >= TARGET_RUNS_AT_64, num(base_rate)),
            _verdict(p50 < TARGET_P50_AT_64, f"{num(p50, 2)} s"),
        ]
        for users in (256, 1024):
            high = _level(results, target, mode, users)
            if high is None:
                cells.append("not run")
                continue
            rate, errors, text = _figures(high.load)
            cells.append(_verdict(errors == 0 and rate >= base_rate, text))
        lines.append(f"| {target} | {mode} | " + " | ".join(cells) + " |")
    return lines


def _errors(results: CapacityResults) -> list[str]:
    lines = [
        "",
        "Errors by kind (runs sent in the window; HTTP status and error code, transport errors, timeouts):",
        "",
    ]
    found = False
    for level in results.levels:
        errors: Counter[str] = level.load.errors
        if errors:
            found = True
            kinds = ", ".join(f"{count:,} x `{kind}`" for kind, count in errors.most_common(6))
            more = f" and {len(errors) - 6} more kinds" if len(errors) > 6 else ""
            lines.append(f"- {level.target}, {level.mode}, C={level.users:,}: {kinds}{more}")
    if not found:
        lines.append("- none")
    for level in results.levels:
        if level.load.peak_in_flight < level.users:
            lines.append(
                f"- {level.target}, {level.mode}, C={level.users:,}: the client had at most "
                f"{level.load.peak_in_flight:,} runs in flight at once"
            )
        if level.leftover_runs:
            lines.append(
                f"- {level.target}, {level.mode}, C={level.users:,} started with {level.leftover_runs:,} runs of "
                f"earlier levels still queued or running (waited {results.config.settle_seconds:g} s for them)"
            )
    return lines


def _memory(results: CapacityResults) -> list[str]:
    lines = ["", "Memory of each process at the server's highest total RSS (any level):", ""]
    lines += ["| Server | At | Process | PID | RSS MiB | PSS MiB |", "|---|---|---|---|---|---|"]
    for target in dict.fromkeys(r.target for r in results.levels):
        top = max((r for r in results.levels if r.target == target), key=lambda r: r.peak.rss_kib)
        for proc in sorted(top.peak.processes, key=lambda p: -p.rss_kib):
            pss = num(proc.pss_kib / 1024, 0) if proc.pss_kib is not None else "n/a"
            at = f"{top.mode}, C={top.users:,}"
            lines.append(f"| {target} | {at} | {proc.name} | {proc.pid} | {num(proc.rss_kib / 1024, 0)} | {pss} |")
    return lines


WORKER = "celery worker"  # bench.capacity_probe.process_name
WEB = "web"
SINK = "span sink"
PER_RUN_COLUMNS = (("Web", (WEB, "daphne")), ("Workers", (WORKER,)), ("Span sink", (SINK,)))


def _kib(processes: list[ProcessMemory], names: tuple[str, ...] | None = None) -> int:
    return sum(p.rss_kib for p in processes if names is None or p.name in names)


def _memory_per_run(results: CapacityResults) -> list[str]:
    """What one run in flight costs: how much the processes grew from the fewest clients to
    the most, over how many more runs were in flight (queued or running), in all and by kind
    of process (the span sink's growth follows how many spans it has stored, not runs in flight)."""
    lines = [
        "",
        (
            "Memory per run in flight: how much the processes' RSS grew from the smallest level to the largest "
            "(at each level's highest total), over how many more runs were in flight (queued or running), "
            "in KiB per run:"
        ),
        "",
    ]
    heads = " | ".join(head for head, _ in PER_RUN_COLUMNS)
    lines += [f"| Server | Mode | Runs in flight | All processes | {heads} |", "|---|---|---|---|---|---|---|"]
    for target, mode in dict.fromkeys((r.target, r.mode) for r in results.levels):
        levels = sorted((r for r in results.levels if (r.target, r.mode) == (target, mode)), key=lambda r: r.users)
        low, high = levels[0], levels[-1]
        runs = high.load.peak_in_flight - low.load.peak_in_flight
        if len(levels) < 2 or runs <= 0:
            continue
        cells = [num((high.peak.rss_kib - low.peak.rss_kib) / runs, 1)]
        for _, names in PER_RUN_COLUMNS:
            grew = _kib(high.peak.processes, names) - _kib(low.peak.processes, names)
            cells.append(num(grew / runs, 1) if _kib(high.peak.processes, names) else "-")
        span = f"{low.load.peak_in_flight:,} → {high.load.peak_in_flight:,}"
        lines.append(f"| {target} | {mode} | {span} | {' | '.join(cells)} |")
    return lines


def _setup(results: CapacityResults, where: Machine) -> list[str]:
    config, phases = results.config, results.config.phases
    concurrency = (
        f"`--run-concurrency {results.run_concurrency}`" if results.run_concurrency else "`up`'s default (no flag)"
    )
    load = f"{' / '.join(f'{v:.2f}' for v in where.load_before)} before, "
    load += f"{' / '.join(f'{v:.2f}' for v in where.load_after)} after"
    return [
        f"## Capacity ({config.name})",
        "",
        (
            f"{where.cores} cores ({where.cpu}), commit {where.commit}, load average {load}; "
            f"{results.minutes:.1f} minutes."
        ),
        "",
        (
            f"The fake model (asyncio, `one-tool-call`) answers each call after {MODEL_LATENCY:g} s: a run waits "
            f"{2 * MODEL_LATENCY:g} s on the model, so C clients could at best finish C runs/s "
            "(*of ideal*: runs/s / C). "
            f"Run concurrency: {concurrency}. C closed-loop clients, a new session per run, one connection each, "
            f"from one asyncio process; per level {phases.warmup:g} s of warm-up, then {phases.window:g} s measured, "
            f"then the runs in flight are waited for (*Drain*), each run within {phases.deadline:g} s."
        ),
        "",
        (
            "*Runs/s*: runs finished in the window / its length. *Runs/s (level)*: every run done / the level's "
            "duration, warm-up and drain included: when runs take longer than the window, clients move in step "
            "and their runs finish together, which the window can miss. *p50, p99, Sent, 202, 503, Errors*: the "
            "runs sent in the window, each followed to its end. A 202 (accepted, wait not held) is followed by "
            "polling "
            f"`GET /api/v1/runs/{{id}}/` (after its Retry-After if it sends one, else after {POLL_SECONDS[0]:g} s, "
            f"doubling up to every {POLL_SECONDS[1]:g} s): a run done that way counts as done, with its "
            "latency up to the poll that saw it done (column *202 then done*). A 503 with Retry-After is overload, "
            "not an error: the client waits Retry-After (at most 5 s) and sends a new run. RSS and PSS: the highest "
            "sum over the server's process tree in the window; DB conns: the most open at once (PostgreSQL: "
            "`pg_stat_activity` for the database, in brackets those running a statement; SQLite: open descriptors "
            "of the database file). Cores: CPU seconds / window."
        ),
        "",
        HEADER,
        "|" + "---|" * (HEADER.count("|") - 1),
    ]


def summary(level: LevelResult) -> dict[str, object]:
    """One level's figures as plain JSON values (NaN as None), for comparing runs with a script."""
    load, peak = level.load, level.peak
    values: dict[str, object] = {
        "server": level.target,
        "mode": level.mode,
        "clients": level.users,
        "runs_per_second": load.runs_per_second,
        "level_runs_per_second": load.level_runs_per_second,
        "p50_s": percentile(load.latencies, 50),
        "p99_s": percentile(load.latencies, 99),
        "sent": len(load.sent_in_window),
        "peak_in_flight": load.peak_in_flight,
        **{kind.value: load.count(kind) for kind in Kind},
        "errors_by_kind": dict(load.errors),
        "rss_mib": peak.rss_kib / 1024,
        "pss_mib": peak.pss_kib / 1024,
        "rss_mib_by_process": {p.name: _kib(peak.processes, (p.name,)) / 1024 for p in peak.processes},
        "db_connections": peak.db_connections,
        "db_active": peak.db_active,
        **{f"{part}_cpu_s": peak.seconds(part) for part in ("server", "database", "model", "client")},
        "machine_busy": peak.machine_busy,
        "drain_s": load.drain_seconds,
        "leftover_runs": level.leftover_runs,
    }
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


def as_json(results: CapacityResults, where: Machine) -> str:
    config = results.config
    head: dict[str, object] = {"config": config.name, "levels": config.levels, "phases": vars(config.phases)}
    head |= {"run_concurrency": results.run_concurrency, "machine": vars(where), "minutes": results.minutes}
    return json.dumps(
        {**head, "results": [summary(level) for level in results.levels], "notes": results.notes}, indent=1
    )


def render(results: CapacityResults, where: Machine) -> str:
    lines = _setup(results, where)
    lines += [_row(level) for level in results.levels]
    lines += _targets(results) + _errors(results) + _memory(results) + _memory_per_run(results)
    if results.notes:
        lines += ["", *(f"Note: {note}" for note in results.notes)]
    return "\n".join(lines) + "\n"
