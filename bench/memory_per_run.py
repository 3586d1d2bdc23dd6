"""Memory per run in flight: what each process of `manage.py up` holds for one more run.

The capacity section reads it from how the processes grew between its levels, which also
counts what they grow by in their first minutes (caches, the trace store's engine). This
holds the runs still instead: the fake model answers each call after 15 s, so every run
stays in flight while it is measured. After a warm-up (WARM_UP runs in flight, finished),
the runs are held in two steps, LOW then HIGH in flight (wait mode: each client's request
waits; SSE: each holds its stream), and the RSS of each process is read at each step: the
difference over the HIGH - LOW runs added is what one more run costs, without what a
process grows by once (first-use imports, caches, allocator arenas). HIGH stays below the
run slots of `up`'s workers (2 x 256), so that every run in flight is running on a worker,
not queued: the count of each is logged and reported.

    python bench/memory_per_run.py [--low 150] [--high 450] [--topologies embedded,postgres] [--modes wait,sse]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.capacity import settle
from bench.capacity_drivers import RUN_INPUT, RUNS_PATH
from bench.capacity_probe import tree_memory
from bench.capacity_stack import PlatformOptions, Server, start_model, start_platform
from bench.stack import log, raise_open_files_limit, remove_dir

LATENCY = 15.0  # seconds per model call: a run waits 30 s
WARM_UP = 150
RAMP_SECONDS = 5.0
SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class Step:
    in_flight: int  # queued or running
    running: int  # taken by a worker
    rss_kib: dict[str, int]  # by kind of process


def by_process(server: Server) -> dict[str, int]:
    """KiB of RSS by kind of process (web, celery worker, span sink, ...), summed."""
    found: dict[str, int] = defaultdict(int)
    for process in tree_memory(server.pid):
        found[process.name] += process.rss_kib
    return dict(found)


async def _hold(server: Server, stream: bool, delay: float, release: asyncio.Event) -> None:
    """Send one run and hold the connection (its request waiting, or its stream open) until `release`."""
    _, writer = await asyncio.open_connection(server.host, server.port)
    try:
        await asyncio.sleep(delay)
        body = json.dumps({"input": RUN_INPUT, **({"stream": True} if stream else {})}).encode()
        head = (
            f"POST {RUNS_PATH} HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: Bearer {server.api_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        await release.wait()
    finally:
        writer.close()


async def _in_flight(server: Server, counts: tuple[int, ...], stream: bool) -> list[Step]:
    """Runs held in flight in steps (`counts`: how many in all at each); what each step found."""
    release, held, steps = asyncio.Event(), list[asyncio.Task[None]](), []
    for count in counts:
        new = count - len(held)
        held += [asyncio.create_task(_hold(server, stream, RAMP_SECONDS * i / new, release)) for i in range(new)]
        deadline = time.monotonic() + RAMP_SECONDS + 60
        while server.database.active_runs() < count and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(SETTLE_SECONDS)  # the last ones reach their wait
        database = server.database
        steps.append(Step(database.active_runs(), database.running_runs(), by_process(server)))
    release.set()
    await asyncio.gather(*held, return_exceptions=True)
    return steps


def _idle(server: Server) -> None:
    settle(server, 3 * LATENCY * 2 + 120)
    time.sleep(SETTLE_SECONDS)


def measure(server: Server, low: int, high: int, stream: bool) -> tuple[dict[str, float], Step]:
    """KiB per run in flight by process, and in all; the HIGH step (runs in flight, running)."""
    asyncio.run(_in_flight(server, (WARM_UP,), stream))
    _idle(server)
    lower, upper = asyncio.run(_in_flight(server, (low, high), stream))
    _idle(server)
    added = max(1, upper.in_flight - lower.in_flight)
    names = sorted(set(lower.rss_kib) | set(upper.rss_kib))
    per_run = {name: (upper.rss_kib.get(name, 0) - lower.rss_kib.get(name, 0)) / added for name in names}
    per_run["all"] = sum(per_run.values())
    log(
        f"  {lower.in_flight} then {upper.in_flight} runs in flight ({lower.running} then {upper.running} running); "
        "KiB per run: " + ", ".join(f"{k} {v:.1f}" for k, v in per_run.items())
    )
    return per_run, upper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--low", type=int, default=150, help="runs in flight at the first step")
    parser.add_argument("--high", type=int, default=450, help="runs in flight at the second (below the run slots)")
    parser.add_argument("--topologies", default="embedded,postgres")
    parser.add_argument("--modes", default="wait,sse")
    args = parser.parse_args()
    raise_open_files_limit()
    rows = []
    for topology in args.topologies.split(","):
        with contextlib.ExitStack() as cleanup:
            workdir = Path(tempfile.mkdtemp(prefix="agentplatform-memory-"))
            cleanup.callback(remove_dir, workdir)
            workdir.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
            ports: set[int] = set()
            model_url, _ = start_model(cleanup, workdir, ports, LATENCY)
            server = start_platform(cleanup, workdir, ports, model_url, PlatformOptions(topology, None))
            for mode in args.modes.split(","):
                log(f"memory per run in flight: {server.label}, {mode}, {args.low:,} then {args.high:,} runs")
                per_run, upper = measure(server, args.low, args.high, mode == "sse")
                rows.append((server.label, mode, per_run, upper))
    names = sorted({name for _, _, per_run, _ in rows for name in per_run if name != "all"})
    print(f"\n| Server | Mode | Runs in flight (running) | All processes | {' | '.join(names)} |")
    print("|---|---|---|---|" + "---|" * len(names))
    for label, mode, per_run, upper in rows:
        cells = " | ".join(f"{per_run.get(name, 0.0):.1f}" for name in names)
        print(f"| {label} | {mode} | {upper.in_flight} ({upper.running}) | {per_run['all']:.1f} | {cells} |")


if __name__ == "__main__":
    main()
