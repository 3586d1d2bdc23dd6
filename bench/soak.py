"""Soak: mixed traffic at a moderate rate for a long time, watching for anything that grows.

    .venv/bin/python bench/soak.py [--minutes 60] [--rate 5] [--topology embedded|postgres]

Starts the asyncio fake model (0.5 s per call) and `manage.py up` with its defaults on a
fresh data directory (embedded: SQLite and the embedded Redis; `postgres`: a fresh
PostgreSQL as DATABASE_URL), a schedule firing every 10 s, a webhook endpoint on a local
receiver (`AGENTPLATFORM_WEBHOOKS_ALLOW_PRIVATE=true`), then `--rate` runs a second of mixed
kinds (bench/soak_traffic.py). Every `--sample-seconds` it records the series of
bench/soak_probe.py; at the end, a table of the first, middle and last samples with a
verdict per series (flat or growing), written to bench/results/soak.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.capacity_probe import ACTIVE_RUNS_SQL, Database, PostgresDatabase, SqliteDatabase
from bench.capacity_report import machine
from bench.capacity_stack import MODEL_LATENCY, platform_env, start_model
from bench.report import code_commit
from bench.soak_probe import Probe, Samples, Threshold, trend
from bench.soak_traffic import KINDS, Driver, Traffic, create_schedule, create_webhook, receive_webhooks
from bench.stack import (
    PYTHON,
    ROOT,
    START_TIMEOUT,
    free_port,
    healthy,
    log,
    publish,
    raise_open_files_limit,
    remove_dir,
    spawn,
    start_postgres,
    wait_for,
)

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "soak.md"
SCHEDULE_SECONDS = 10  # the shortest interval a schedule accepts
RUN_STATUS_SQL = "SELECT status, count(*) FROM agents_run GROUP BY status ORDER BY status"
SCHEDULED_RUNS_SQL = "SELECT count(*) FROM agents_run WHERE schedule_id IS NOT NULL"
DELIVERY_STATUS_SQL = "SELECT status, count(*) FROM approvals_webhookdelivery GROUP BY status ORDER BY status"


@dataclass(frozen=True)
class Platform:
    base_url: str
    pid: int
    database: Database
    database_url: str | None
    sqlite_path: Path
    api_key: str


def _api_key(env: dict[str, str]) -> str:
    """A key of the bench user that may also decide approvals and manage webhooks."""
    argv = [PYTHON, "manage.py", "create_api_key", "--user", "bench", "--name", "soak"]
    argv += ["--scopes", "approvals:decide,webhooks:manage"]
    done = subprocess.run(  # our own command
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=START_TIMEOUT, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def start_platform(cleanup: contextlib.ExitStack, workdir: Path, ports: set[int], topology: str) -> Platform:
    model_url, _ = start_model(cleanup, workdir, ports)
    database_url = None
    if topology == "postgres":
        database_url = start_postgres(cleanup, workdir / "postgres", free_port(ports))
    env = platform_env(model_url, workdir / "data", database_url)
    env["AGENTPLATFORM_WEBHOOKS_ALLOW_PRIVATE"] = "true"  # the receiver listens on 127.0.0.1
    port = free_port(ports)
    argv = [PYTHON, "manage.py", "up", "--host", "127.0.0.1", "--port", str(port)]
    process = spawn(cleanup, argv, env, workdir / "platform.log", f"platform ({topology})")
    base_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: healthy(base_url), process, "platform")
    log(f"platform ({topology}) is healthy at {base_url}")
    sqlite_path = workdir / "data" / "db.sqlite3"
    database: Database
    if database_url is not None:
        postgres = PostgresDatabase(database_url, workdir / "postgres" / "data")
        cleanup.callback(postgres.close)
        database = postgres
    else:
        database = SqliteDatabase(sqlite_path, process.pid)
    return Platform(base_url, process.pid, database, database_url, sqlite_path, _api_key(env))


def _query(platform: Platform, sql: str) -> list[tuple[Any, ...]]:
    if platform.database_url is not None:
        with psycopg.connect(platform.database_url, autocommit=True) as conn:
            return list(conn.execute(sql).fetchall())
    with sqlite3.connect(f"file:{platform.sqlite_path}?mode=ro", uri=True, timeout=5) as conn:
        return list(conn.execute(sql).fetchall())


@dataclass
class SoakResult:
    topology: str
    minutes: float
    rate: float
    sample_seconds: float
    samples: Samples
    traffic: Traffic
    run_statuses: list[tuple[Any, ...]]
    scheduled_runs: int
    delivery_statuses: list[tuple[Any, ...]]
    wall_minutes: float = 0.0


async def _sample_every(probe: Probe, samples: Samples, seconds: float, stop: asyncio.Event) -> None:
    while True:
        try:
            await asyncio.to_thread(probe.sample, samples)
        except (OSError, ValueError, RuntimeError) as exc:  # one bad sample is a gap, not the end of the soak
            log(f"sample failed: {type(exc).__name__}: {exc}")
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def _soak(platform: Platform, ports: set[int], args: argparse.Namespace, traffic: Traffic) -> Samples:
    receiver = await receive_webhooks(traffic, free_port(ports))
    hook_port = receiver.sockets[0].getsockname()[1]
    driver = Driver(platform.base_url, platform.api_key, traffic)
    await create_webhook(driver.client, f"http://127.0.0.1:{hook_port}/hook")
    await create_schedule(driver.client, SCHEDULE_SECONDS)
    probe = Probe(platform.pid, platform.database, lambda: int(_query(platform, ACTIVE_RUNS_SQL)[0][0]))
    samples, stop = Samples(), asyncio.Event()
    sampler = asyncio.create_task(_sample_every(probe, samples, args.sample_seconds, stop))
    log(f"soak: {args.rate:g} runs/s for {args.minutes:g} min, a sample every {args.sample_seconds:g} s")
    try:
        await driver.run(args.minutes * 60, args.rate)
        log(f"traffic over; runs still in flight waited for; {dict(traffic.started)} started")
        await asyncio.sleep(min(args.sample_seconds, 5))  # the last sample after the traffic settled
    finally:
        stop.set()
        await sampler
        probe.close()
        await driver.close()
        receiver.close()
    return samples


def _value(value: float, threshold: Threshold) -> str:
    if math.isnan(value):
        return "-"
    return f"{value / 1024:,.1f}" if threshold.unit == "MiB" else f"{value:,.0f}"


def _series_rows(samples: Samples) -> list[str]:
    times, last = samples.times, len(samples.times) - 1
    picks = [0, last // 2, last]
    header = " | ".join(f"{times[i] / 60:.1f} min" for i in picks)
    rows = [
        f"| Series | {header} | max | slope / hour (2nd half) | rise in 2nd half | threshold | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, values in samples.series.items():
        threshold = samples.thresholds[name]
        fit = trend(times, values, threshold)
        cells = " | ".join(_value(values[i], threshold) for i in picks)
        cells += f" | {_value(max((v for v in values if not math.isnan(v)), default=math.nan), threshold)}"
        unit = f" ({threshold.unit})" if threshold.unit else ""
        verdict = f"**{fit.verdict}**" if fit.verdict == "growing" else fit.verdict
        rows.append(
            f"| {name}{unit} | {cells} | {_value(fit.slope_per_hour, threshold)} | {_value(fit.rise, threshold)} "
            f"| {_value(fit.limit, threshold)} | {verdict} |"
        )
    return rows


def render(result: SoakResult, commit: str, load_before: tuple[float, float, float]) -> str:
    where = machine(load_before, commit)
    traffic, samples = result.traffic, result.samples
    load = f"{' / '.join(f'{v:.2f}' for v in where.load_before)} before, "
    load += f"{' / '.join(f'{v:.2f}' for v in where.load_after)} after"
    mix = ", ".join(f"{kind} {share:.0%}" for kind, share in KINDS.items())
    lines = [
        f"## Soak ({result.topology}, {result.minutes:g} min at {result.rate:g} runs/s)",
        "",
        (
            f"{where.cores} cores ({where.cpu}), commit {where.commit}, load average {load}; "
            f"{result.wall_minutes:.1f} minutes in all."
        ),
        "",
        (
            f"`manage.py up` with its defaults ({result.topology}); the fake model answers each call after "
            f"{MODEL_LATENCY:g} s. Traffic: {result.rate:g} runs/s ({mix}; see bench/soak_traffic.py), a schedule "
            f"every {SCHEDULE_SECONDS} s, a webhook endpoint for {', '.join(['run.completed', 'run.failed'])} and "
            f"approval.requested on a local receiver. A sample every {result.sample_seconds:g} s "
            f"({len(samples.times)} in all)."
        ),
        "",
        "| Kind | started | ok | errors |",
        "|---|---:|---:|---:|",
    ]
    for kind in KINDS:
        errors = sum(n for what, n in traffic.errors.items() if what.startswith(f"{kind}:"))
        lines.append(f"| {kind} | {traffic.started[kind]:,} | {traffic.ok[kind]:,} | {errors:,} |")
    decisions = ", ".join(f"{n} {what}" for what, n in sorted(traffic.decisions.items())) or "none"
    hooks = ", ".join(f"{n:,} {what}" for what, n in sorted(traffic.webhooks.items())) or "none"
    statuses = ", ".join(f"{status} {count:,}" for status, count in result.run_statuses)
    deliveries = ", ".join(f"{status} {count:,}" for status, count in result.delivery_statuses) or "none"
    lines += [
        "",
        f"- Approvals decided: {decisions}. Starts skipped ({'>'}in-flight cap): {traffic.skipped}.",
        f"- Webhook deliveries received: {hooks}; in the outbox at the end, by status: {deliveries}.",
        f"- Runs in the database at the end, by status: {statuses}; {result.scheduled_runs:,} of them by the schedule.",
    ]
    if traffic.errors:
        lines += ["", "Errors:", ""]
        lines += [f"- {n}x `{what}`" for what, n in traffic.errors.most_common(8)]
    lines += ["", *_series_rows(samples), ""]
    growing = [
        name
        for name, values in samples.series.items()
        if trend(samples.times, values, samples.thresholds[name]).verdict == "growing"
    ]
    lines.append(f"Growing: {', '.join(growing)}." if growing else "Nothing grew over the second half.")
    lines += [
        "",
        (
            "A series *grows* when its least-squares slope over the second half of the samples, times that "
            "half's duration (*rise*), is above its threshold: RSS max(2 MiB, 2% of the mean), counts max(2, "
            "10% of the mean), queue lengths and active runs max(5, 10% of the mean). The first half is left "
            "out: caches, pools and Python's arenas fill while traffic starts. A short soak only shows a fast "
            "leak; the hour shows a slow one."
        ),
    ]
    return "\n".join(lines) + "\n"


def measure(minutes: float, rate: float, topology: str, sample_seconds: float) -> SoakResult:
    args = argparse.Namespace(minutes=minutes, rate=rate, sample_seconds=sample_seconds)
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="agentplatform-soak-"))
        cleanup.callback(remove_dir, workdir)
        workdir.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
        raise_open_files_limit()
        ports: set[int] = set()
        platform = start_platform(cleanup, workdir, ports, topology)
        traffic = Traffic()
        samples = asyncio.run(_soak(platform, ports, args, traffic))
        statuses = _query(platform, RUN_STATUS_SQL)
        scheduled = int(_query(platform, SCHEDULED_RUNS_SQL)[0][0])
        deliveries = _query(platform, DELIVERY_STATUS_SQL)
    result = SoakResult(topology, minutes, rate, sample_seconds, samples, traffic, statuses, scheduled, deliveries)
    result.wall_minutes = (time.monotonic() - started) / 60
    return result


def default_sample_seconds(minutes: float) -> float:
    """About 120 samples, every 5 to 30 s."""
    return min(30.0, max(5.0, minutes * 60 / 120))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=60.0, help="how long the traffic lasts (default 60)")
    parser.add_argument("--rate", type=float, default=5.0, help="runs started per second (default 5)")
    parser.add_argument("--topology", choices=("embedded", "postgres"), default="embedded")
    parser.add_argument("--sample-seconds", type=float, default=None, help="default: about 120 samples, 5-30 s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    sample_seconds = args.sample_seconds or default_sample_seconds(args.minutes)

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    load_before, commit = os.getloadavg(), code_commit()
    try:
        result = measure(args.minutes, args.rate, args.topology, sample_seconds)
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    publish(render(result, commit, load_before), RESULTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
