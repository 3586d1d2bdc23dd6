"""Benchmark tracing: `.venv/bin/python bench/tracing.py [--quick] [--only ingest,queries,overhead]`.

1. Ingest: spans per second into ClickHouse (chDB) through our exporter, straight into the
   store, and through the Redis route and the span sink (two processes, as under `up`).
2. Queries: the trace list, a trace and the metrics with 1,000,000 spans in the store, in
   the sink process itself and from another process through the route (as the admin and
   the API in web processes read it).
3. Overhead: runs/s and latency of `POST .../runs/` with tracing off and on, the platform
   restarted between, alternating (off, on, off, on) on one PostgreSQL and fake model.

Prints Markdown and writes it to bench/results/tracing.md. Everything it starts is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack
from bench.cpu import process_cpu
from bench.load import Target, measure_level
from bench.stack import PYTHON, ROOT, log, publish
from tests.infra import start_redis
from tests.infra import stop as stop_process

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "tracing.md"


@dataclass(frozen=True)
class Config:
    spans: int  # per ingest measurement
    batch: int
    stored: int  # spans in the store for the query latencies
    repeat: int  # timings per query
    rounds: int  # overhead rounds per mode and concurrency
    per_round: dict[int, int]  # concurrency: runs per round


FULL = Config(spans=200_000, batch=10_000, stored=1_000_000, repeat=15, rounds=3, per_round={1: 100, 8: 200})
QUICK = Config(spans=50_000, batch=10_000, stored=1_000_000, repeat=5, rounds=1, per_round={1: 30, 8: 60})


def _env(data_dir: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTPLATFORM_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="agentplatform.settings",
        AGENTPLATFORM_DATA_DIR=str(data_dir),
        AGENTPLATFORM_TRACING="false",  # the bench processes build their own exporters
        REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
    )
    return env


def _spans_command(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(  # noqa: PLW1510  # checked below, with the output
        [PYTHON, "-m", "bench.spans", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.spans {' '.join(args)} failed: {result.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@contextlib.contextmanager
def _sink(env: dict[str, str], log_file: Path) -> Iterator[int]:
    """The span sink on the data directory (it opens the store and migrates it as it starts,
    and keeps it open: the queries are timed on an open store)."""
    sink_env = {**env, "AGENTPLATFORM_TRACING": "true", "AGENTPLATFORM_TRACE_SINK_IDLE_SECONDS": "0"}
    with log_file.open("w") as out:
        process = subprocess.Popen(  # our own command
            [PYTHON, "manage.py", "span_sink"], cwd=ROOT, env=sink_env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120
        while "span sink: serving" not in log_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the span sink did not start: {log_file.read_text()[-2000:]}")
            time.sleep(0.2)
        yield process.pid
    finally:
        stop_process(process)


def ingest(config: Config, workdir: Path, redis_url: str) -> list[dict[str, Any]]:
    direct = _env(workdir / "direct", redis_url)
    log(f"ingest: {config.spans:,} spans through the exporter straight into chDB")
    results = [
        {
            "path": "exporter → chDB (one process)",
            **_spans_command(direct, "ingest-direct", str(config.spans), str(config.batch)),
        }
    ]
    routed = {**_env(workdir / "routed", redis_url), "AGENTPLATFORM_TRACE_SINK_INTERVAL": "1"}
    log(f"ingest: {config.spans:,} spans through the exporter, the Redis route and the span sink")
    with _sink(routed, workdir / "sink-ingest.log") as sink_pid:
        sink_cpu = process_cpu(sink_pid)
        found = _spans_command(routed, "ingest-route", str(config.spans), str(config.batch))
        found["cpu_seconds"] += process_cpu(sink_pid) - sink_cpu
    results.append({"path": "exporter → Redis route → span sink → chDB (two processes)", **found})
    return results


def queries(config: Config, workdir: Path, redis_url: str) -> dict[str, Any]:
    env = _env(workdir / "queries", redis_url)
    log(f"queries: inserting {config.stored:,} synthetic spans")
    generated = _spans_command(env, "generate", str(config.stored))
    log(f"queries: {config.repeat} timings each, in the process that owns the store")
    local = _spans_command(env, "queries", str(config.repeat), "local")
    log("queries: the same from another process, through the route and the span sink")
    with _sink(env, workdir / "sink-queries.log"):
        routed = _spans_command(env, "queries", str(config.repeat), "route")
    return {"generated": generated, "local": local["queries"], "route": routed["queries"]}


def _platform_round(env: dict[str, str], workdir: Path, config: Config, key: str | None) -> tuple[str, dict[int, Any]]:
    with contextlib.ExitStack() as cleanup:
        base_url, pid = stack._start_platform(cleanup, env, workdir, stack.free_port(set()))
        key = key or stack.create_api_key(env)
        levels = {}
        for concurrency, per_round in config.per_round.items():
            result = measure_level(Target(base_url, key, pid), concurrency, config.rounds, per_round)
            levels[concurrency] = result
            rate, p50, errors = result.runs_per_second, result.p50_ms, len(result.errors)
            log(f"  C={concurrency}: {rate:.1f} runs/s, p50 {p50:.1f} ms, {errors} errors")
        return key, levels


def overhead(config: Config, workdir: Path) -> dict[str, Any]:
    measured: dict[str, dict[int, list[Any]]] = {"off": {}, "on": {}}
    with contextlib.ExitStack() as cleanup:
        ports: set[int] = set()
        database_url = stack.start_postgres(cleanup, workdir / "postgres", stack.free_port(ports))
        redis_url = stack._start_redis(cleanup, workdir)
        model_url = stack._start_fake_model(cleanup, workdir, stack.free_port(ports))
        key = None
        for mode in ("off", "on", "off", "on"):
            env = stack.platform_env(database_url, redis_url, model_url, workdir / "data")
            env["AGENTPLATFORM_TRACING"] = "true" if mode == "on" else "false"
            log(f"overhead: platform with tracing {mode}")
            key, levels = _platform_round(env, workdir, config, key)
            for concurrency, level in levels.items():
                measured[mode].setdefault(concurrency, []).append(level)
    return measured


OVERHEAD_HEADER = (
    (
        "| Concurrency | Runs/s off | Runs/s on | Overhead (runs/s) | p50 ms off | p50 ms on "
        "| Platform CPU ms/run off | on | Overhead (CPU) | Errors |"
    ),
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
)
INGEST_HEADER = (
    "| Path | Spans | Batch | Seconds | Spans/s | CPU seconds | Spans per CPU second | Dropped |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
)
QUERIES_HEADER = (
    "| Query | In the sink: median ms | p95 ms | From a web process (route): median ms | p95 ms | Rows |",
    "|---|---:|---:|---:|---:|---:|",
)


def render_overhead(measured: dict[str, Any]) -> list[str]:
    lines = list(OVERHEAD_HEADER)
    for concurrency in sorted(measured["off"]):
        off, on = measured["off"][concurrency], measured["on"][concurrency]
        rate_off = statistics.median(level.runs_per_second for level in off)
        rate_on = statistics.median(level.runs_per_second for level in on)
        p50_off = statistics.median(level.p50_ms for level in off)
        p50_on = statistics.median(level.p50_ms for level in on)
        cpu_off = statistics.median(level.platform_cpu_ms_per_run for level in off)
        cpu_on = statistics.median(level.platform_cpu_ms_per_run for level in on)
        errors = sum(len(level.errors) for level in off + on)
        requests = sum(level.requests for level in off + on)
        lines.append(
            f"| {concurrency} | {rate_off:.1f} | {rate_on:.1f} | {100 * (1 - rate_on / rate_off):+.1f}% "
            f"| {p50_off:.1f} | {p50_on:.1f} | {cpu_off:.1f} | {cpu_on:.1f} | {100 * (cpu_on / cpu_off - 1):+.1f}% "
            f"| {errors} / {requests:,} |"
        )
    return lines


def render_ingest(found: list[dict[str, Any]]) -> list[str]:
    return [
        *INGEST_HEADER,
        *(
            f"| {r['path']} | {r['stored']:,} | {r['batch']:,} | {r['seconds']:.2f} | {r['per_second']:,.0f} "
            f"| {r['cpu_seconds']:.2f} | {r['stored'] / r['cpu_seconds']:,.0f} | {r['dropped']} |"
            for r in found
        ),
    ]


def render_queries(found: dict[str, Any]) -> list[str]:
    lines = list(QUERIES_HEADER)
    for name, local in found["local"].items():
        routed = found["route"][name]
        lines.append(
            f"| {name} | {local['median_ms']:.1f} | {local['p95_ms']:.1f} | {routed['median_ms']:.1f} "
            f"| {routed['p95_ms']:.1f} | {local['rows']} |"
        )
    return lines


def render(config: Config, results: dict[str, Any]) -> str:
    load_after = tuple(round(x, 2) for x in os.getloadavg())
    out = [
        "### Tracing",
        "",
        (
            f"- Machine: {os.cpu_count()} cores; load average (1/5/15 min) before {results['load_before']}, "
            f"after {load_after}"
        ),
    ]
    if "ingest" in results:
        out += ["", "#### Span ingest through our exporter (target: at least 50,000 spans/s)", ""]
        out += render_ingest(results["ingest"])
    if "queries" in results:
        generated = results["queries"]["generated"]
        title = f"{generated['spans']:,} spans ({generated['traces']:,} traces over 7 days)"
        out += ["", f"#### Trace list, trace and metrics queries with {title}", ""]
        out += render_queries(results["queries"])
    if "overhead" in results:
        out += [
            "",
            "#### Overhead on runs (target: under 10% of runs/s)",
            "",
            (
                f"`POST /api/v1/agents/bench/runs/` (2 model calls + 1 tool call per run), {config.rounds} round(s) "
                "per mode and concurrency; the platform restarted with tracing off, on, off, on; medians."
            ),
            "",
        ]
        out += render_overhead(results["overhead"])
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="ingest,queries,overhead")
    options = parser.parse_args(argv)
    config = QUICK if options.quick else FULL
    parts = set(options.only.split(","))
    results: dict[str, Any] = {"load_before": tuple(round(x, 2) for x in os.getloadavg())}
    workdir = Path(tempfile.mkdtemp(prefix="agentplatform-bench-tracing-"))
    workdir.chmod(0o755)
    redis, redis_url = start_redis()
    try:
        if "ingest" in parts:
            results["ingest"] = ingest(config, workdir, redis_url)
        if "queries" in parts:
            results["queries"] = queries(config, workdir, redis_url)
        if "overhead" in parts:
            results["overhead"] = overhead(config, workdir)
    finally:
        stop_process(redis)
        stack.remove_dir(workdir)
    markdown = render(config, results)
    publish(markdown, RESULTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
