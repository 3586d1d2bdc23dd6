"""Benchmark the platform end to end: `.venv/bin/python bench/run.py [--quick] [--only SECTION,...]`.

Starts its own PostgreSQL (durable), Redis, fake model server and platform, measures run
throughput and latency at several concurrencies, history reads/appends at several session
lengths, streaming (idle WebSockets, live event latency, SSE time to the first event), and
approvals (bench/approvals.py: the decision's round trip, the admin inbox at 10 to 10,000
pending); then, on platforms of its own (bench/capacity.py), capacity: runs/s, latency,
errors, memory and database connections at 16 to 1,024 clients against a model that takes
0.5 s per call; and reads (bench/reads.py): session history read by 100 to 10,000
concurrent clients from one web process, next to the peer; and a 10-minute soak (bench/soak.py:
mixed traffic, watching memory, connections, Redis subscriptions and queues for growth).
Prints Markdown tables and writes them to bench/results/latest.md. Everything it started is
stopped on exit, on an error and on Ctrl-C or SIGTERM.
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

from bench import approvals, capacity, capacity_report, floor, reads, reads_report, soak
from bench.history import measure_append, measure_history, seed_sessions
from bench.load import Client, Target, measure_level
from bench.report import Config, Results, code_commit, environment, render
from bench.stack import Stack, log, publish, running_stack
from bench.streaming import StreamingConfig, measure_streaming

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.md"
CAPACITY_FILE = RESULTS_FILE.with_name("capacity.md")
READS_FILE = RESULTS_FILE.with_name("reads.md")
SOAK_FILE = RESULTS_FILE.with_name("soak.md")
SOAK_MINUTES = {"full": 10.0, "quick": 2.0}
SECTIONS = ("runs", "floor", "history", "streaming", "approvals", "capacity", "reads", "soak")
SHARED_STACK_SECTIONS = set(SECTIONS) - {"capacity", "reads", "soak"}  # these start servers of their own
FULL = Config(
    "full",
    rounds=5,
    per_round={1: 200, 8: 400, 32: 640},
    history_samples=200,
    append_samples=30,
    streaming=StreamingConfig(
        idle_steps=(1_000, 2_500, 5_000, 10_000),
        hold_seconds=30,
        watchers=1_000,
        watchers_per_session=10,
        latency_levels=((1, 100), (8, 400)),
        ttfb_samples=100,
    ),
)
QUICK = Config(
    "quick",
    rounds=2,
    per_round={1: 40, 8: 80, 32: 128},
    history_samples=30,
    append_samples=8,
    streaming=StreamingConfig(
        idle_steps=(250, 500),
        hold_seconds=3,
        watchers=100,
        watchers_per_session=10,
        latency_levels=((1, 10), (8, 40)),
        ttfb_samples=15,
    ),
)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    """Unwind through running_stack(), which stops everything; a second signal cannot cut the cleanup short."""
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _runs(stack: Stack, config: Config, results: Results) -> None:
    target = Target(stack.base_url, stack.api_key, stack.platform_pid)
    for concurrency, per_round in config.per_round.items():
        log(f"runs at concurrency {concurrency}: warm-up, then {config.rounds} rounds of {per_round}")
        results.levels.append(measure_level(target, concurrency, config.rounds, per_round))
        log(f"  median {results.levels[-1].runs_per_second:.1f} runs/s, {len(results.levels[-1].errors)} errors")


def _history(stack: Stack, config: Config, results: Results) -> None:
    log("seeding sessions of 10, 100, 1,000 and 10,000 messages with SQL")
    sessions = seed_sessions(stack.database_url, stack.api_key)
    client = Client(stack.base_url, stack.api_key)
    try:
        log(f"history reads: {config.history_samples} per session size")
        results.history = measure_history(client, sessions, config.history_samples)
        log(f"appending runs: {config.append_samples} to the shortest and the longest session")
        results.append = measure_append(client, sessions, config.append_samples)
    finally:
        client.close()


def measure(stack: Stack, config: Config, sections: set[str]) -> Results:
    """The chosen sections, always in the same order: runs, the floor, history, streaming
    (the floor right after the runs, on the same fresh platform, so that they compare)."""
    results = Results(config)
    if "runs" in sections:
        _runs(stack, config, results)
    if "floor" in sections:
        log(f"the floor: health, an agent read, empty runs and no-op Celery tasks, {config.rounds} rounds each")
        results.floor = floor.measure_floor(stack, config.rounds, max(config.per_round.values()))
    if "history" in sections:
        _history(stack, config, results)
    if "streaming" in sections:
        results.streaming = measure_streaming(stack, config.streaming)
    return results


def _sections(value: str) -> set[str]:
    chosen = {part.strip() for part in value.split(",") if part.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(SECTIONS)} (comma-separated)")
    return chosen


def _topologies(value: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    if not chosen or set(chosen) - set(capacity.TOPOLOGIES):
        raise argparse.ArgumentTypeError(f"choose among {', '.join(capacity.TOPOLOGIES)} (comma-separated)")
    return chosen


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and requests (a smoke test)")
    parser.add_argument(
        "--only", type=_sections, default=set(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--run-concurrency", type=int, default=None, help="capacity: passed to `manage.py up` (default: up's own)"
    )
    parser.add_argument(
        "--topologies",
        type=_topologies,
        default=capacity.TOPOLOGIES,
        help="capacity: the platforms to load, comma-separated (default: embedded,postgres)",
    )
    parser.add_argument("--no-peer", action="store_true", help="capacity, reads: skip the peer framework")
    parser.add_argument("--soak-rate", type=float, default=5.0, help="soak: runs started per second (default 5)")
    return parser.parse_args(argv)


def _shared_stack_sections(config: Config, sections: set[str]) -> str:
    """Every section but capacity, against one stack; its Markdown."""
    load_before, started = os.getloadavg(), time.monotonic()
    with running_stack() as stack:
        results = measure(stack, config, sections)
        approval_results = None
        if "approvals" in sections:
            approval_results = approvals.measure(stack, *approvals.SAMPLES[config.name])
        env = environment(stack.database_url, load_before, started)
    markdown = render(env, results)
    if results.floor is not None:
        markdown += floor.render(results.floor, results.levels)
    if approval_results is not None:
        markdown += approvals.render(approval_results)
    return markdown


def _capacity(args: argparse.Namespace) -> str:
    """The capacity section, after the shared stack is stopped (nothing else competes for the cores)."""
    load_before, commit = os.getloadavg(), code_commit()  # the code the platforms start from
    config = capacity.QUICK if args.quick else capacity.FULL
    results = capacity.measure_capacity(config, args.run_concurrency, args.topologies, peer=not args.no_peer)
    where = capacity_report.machine(load_before, commit)
    markdown = capacity_report.render(results, where)
    CAPACITY_FILE.parent.mkdir(exist_ok=True)
    CAPACITY_FILE.write_text(markdown)
    CAPACITY_FILE.with_suffix(".json").write_text(capacity_report.as_json(results, where))
    return markdown


def _reads(args: argparse.Namespace) -> str:
    """The reads section, on servers of its own, after the others are stopped."""
    load_before, commit = os.getloadavg(), code_commit()
    results = reads.measure_reads(reads.QUICK if args.quick else reads.FULL, peer=not args.no_peer)
    markdown = reads_report.render(results, capacity_report.machine(load_before, commit))
    READS_FILE.parent.mkdir(exist_ok=True)
    READS_FILE.write_text(markdown)
    return markdown


def _soak(args: argparse.Namespace) -> str:
    """The soak (bench/soak.py), on a platform of its own, last: mixed traffic for 10 minutes (`--quick`: 2)."""
    load_before, commit = os.getloadavg(), code_commit()
    minutes = SOAK_MINUTES["quick" if args.quick else "full"]
    result = soak.measure(minutes, args.soak_rate, "embedded", soak.default_sample_seconds(minutes))
    markdown = soak.render(result, commit, load_before)
    SOAK_FILE.parent.mkdir(exist_ok=True)
    SOAK_FILE.write_text(markdown)
    return markdown


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    config = QUICK if args.quick else FULL
    for stop_signal in STOP_SIGNALS:  # also SIGINT: a background job may have inherited it ignored
        signal.signal(stop_signal, _stop_on_signal)
    markdown = ""
    try:
        if args.only & SHARED_STACK_SECTIONS:
            markdown += _shared_stack_sections(config, args.only & SHARED_STACK_SECTIONS)
        if "capacity" in args.only:
            markdown += ("\n" if markdown else "") + _capacity(args)
        if "reads" in args.only:
            markdown += ("\n" if markdown else "") + _reads(args)
        if "soak" in args.only:
            markdown += ("\n" if markdown else "") + _soak(args)
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    publish(markdown, RESULTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
