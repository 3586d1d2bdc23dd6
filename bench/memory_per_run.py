"""Memory per run in flight: what each process of `manage.py up` holds for one more run.

The capacity section reads it from how the processes grew between its levels, which also
counts what they grow by in their first minutes (caches, the trace store's engine). This
holds the runs still instead: the fake model answers each call after 15 s, so every run
stays in flight while it is measured. After a warm-up (WARM_UP runs, finished), the RSS of
each process with no run in flight, then with N runs in flight (wait mode: each client's
request waits; SSE: each holds its stream), and the difference over the N - WARM_UP runs
the warm-up did not already make room for.

    python bench/memory_per_run.py [--runs 1000] [--topologies embedded,postgres] [--modes wait,sse]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.capacity_drivers import RUN_INPUT, RUNS_PATH
from bench.capacity_probe import tree_memory
from bench.capacity_stack import PlatformOptions, Server, start_model, start_platform
from bench.stack import log, raise_open_files_limit, remove_dir

LATENCY = 15.0  # seconds per model call: a run waits 30 s
WARM_UP = 50
RAMP_SECONDS = 5.0
SETTLE_SECONDS = 3.0


def by_process(server: Server) -> dict[str, int]:
    """KiB of RSS by kind of process (web, celery worker, span sink, ...), summed."""
    found: dict[str, int] = defaultdict(int)
    for process in tree_memory(server.pid):
        found[process.name] += process.rss_kib
    return dict(found)


async def _hold(server: Server, stream: bool, delay: float, release: asyncio.Event) -> str:
    """Send one run and hold the connection until `release`; the status line's code."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
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
        return (await reader.readline()).decode(errors="replace").split(" ")[1:2][0] if not stream else "stream"
    finally:
        writer.close()


async def _in_flight(server: Server, count: int, stream: bool, ramp: float) -> tuple[dict[str, int], int]:
    """RSS by process once `count` runs are in flight (or after a minute), and how many were."""
    release = asyncio.Event()
    held = [asyncio.create_task(_hold(server, stream, ramp * i / count, release)) for i in range(count)]
    deadline = time.monotonic() + ramp + 60
    while server.database.active_runs() < count and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await asyncio.sleep(SETTLE_SECONDS)  # the last ones reach their wait
    flying, memory = server.database.active_runs(), by_process(server)
    release.set()
    await asyncio.gather(*held, return_exceptions=True)
    return memory, flying


def _idle(server: Server) -> dict[str, int]:
    deadline = time.monotonic() + 3 * LATENCY * 2 + 120
    while server.database.active_runs() and time.monotonic() < deadline:
        time.sleep(1.0)
    time.sleep(SETTLE_SECONDS)
    return by_process(server)


def measure(server: Server, runs: int, stream: bool) -> dict[str, float]:
    """KiB per run in flight by process, and in all."""
    asyncio.run(_in_flight(server, WARM_UP, stream, 1.0))
    idle = _idle(server)
    held, flying = asyncio.run(_in_flight(server, runs, stream, RAMP_SECONDS))
    _idle(server)
    new = max(1, flying - WARM_UP)
    per_run = {name: (held.get(name, 0) - idle.get(name, 0)) / new for name in sorted(set(held) | set(idle))}
    per_run["all"] = sum(per_run.values())
    log(f"  {flying} runs in flight; KiB per run: " + ", ".join(f"{k} {v:.1f}" for k, v in per_run.items()))
    return per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
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
                log(f"memory per run in flight: {server.label}, {mode}, {args.runs:,} runs")
                rows.append((server.label, mode, measure(server, args.runs, mode == "sse")))
    names = sorted({name for _, _, per_run in rows for name in per_run if name != "all"})
    print(f"\n| Server | Mode | All processes | {' | '.join(names)} |")
    print("|---|---|---|" + "---|" * len(names))
    for label, mode, per_run in rows:
        cells = " | ".join(f"{per_run.get(name, 0.0):.1f}" for name in names)
        print(f"| {label} | {mode} | {per_run['all']:.1f} | {cells} |")


if __name__ == "__main__":
    main()
