"""Benchmark the platform end to end: `cd /work/main && .venv/bin/python bench/run.py [--quick]`.

Starts its own PostgreSQL (durable), fake model server and platform, measures run
throughput and latency at several concurrencies, history reads/appends at several
session lengths, and approvals (bench/approvals.py: the decision's round trip, the admin
inbox at 10 to 10,000 pending), prints Markdown tables and writes them to bench/results/latest.md.
Everything it started is stopped on exit, on an error and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import approvals
from bench.history import measure_append, measure_history, seed_sessions
from bench.load import Client, Target, measure_level
from bench.report import Config, Results, environment, render
from bench.stack import Stack, log, running_stack

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.md"
FULL = Config("full", rounds=5, per_round={1: 200, 8: 400, 32: 640}, history_samples=200, append_samples=30)
QUICK = Config("quick", rounds=2, per_round={1: 40, 8: 80, 32: 128}, history_samples=30, append_samples=8)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    """Unwind through running_stack(), which stops everything; a second signal cannot cut the cleanup short."""
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def measure(stack: Stack, config: Config) -> Results:
    levels = []
    target = Target(stack.base_url, stack.api_key, stack.platform_pid)
    for concurrency, per_round in config.per_round.items():
        log(f"runs at concurrency {concurrency}: warm-up, then {config.rounds} rounds of {per_round}")
        levels.append(measure_level(target, concurrency, config.rounds, per_round))
        log(f"  median {levels[-1].runs_per_second:.1f} runs/s, {len(levels[-1].errors)} errors")
    log("seeding sessions of 10, 100, 1,000 and 10,000 messages with SQL")
    sessions = seed_sessions(stack.database_url, stack.api_key)
    client = Client(stack.base_url, stack.api_key)
    try:
        log(f"history reads: {config.history_samples} per session size")
        history = measure_history(client, sessions, config.history_samples)
        log(f"appending runs: {config.append_samples} to the shortest and the longest session")
        append = measure_append(client, sessions, config.append_samples)
    finally:
        client.close()
    return Results(config, levels, history, append)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and requests (a smoke test)")
    config = QUICK if parser.parse_args(argv).quick else FULL
    for stop_signal in STOP_SIGNALS:  # also SIGINT: a background job may have inherited it ignored
        signal.signal(stop_signal, _stop_on_signal)
    load_before, started = os.getloadavg(), time.monotonic()
    try:
        with running_stack() as stack:
            results = measure(stack, config)
            approval_results = approvals.measure(stack, *approvals.SAMPLES[config.name])
            env = environment(stack.database_url, load_before, started)
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    markdown = render(env, results) + approvals.render(approval_results)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(markdown)
    print(markdown)
    log(f"written to {RESULTS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
