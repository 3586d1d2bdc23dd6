"""The capacity section: how many runs per second the platform sustains as clients multiply.

The fake model answers each call after 0.5 s, so a run (two model calls and one tool call)
waits 1 s on the model, and C clients could at best finish C runs per second. For each
topology (embedded: `manage.py up` on SQLite; PostgreSQL: the same with DATABASE_URL) and
each client mode (wait: the request holds until the run is done; SSE: `stream: true`, done
at the final event), C = 16, 64, 256, 1024 closed-loop clients (bench/capacity_load.py),
with memory, database connections and CPU sampled through each window
(bench/capacity_probe.py). Optionally the same load against a peer (bench/capacity_peer.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.capacity_drivers import Driver, PeerDriver, PlatformDriver
from bench.capacity_load import LevelLoad, Phases, run_level
from bench.capacity_peer import start_peer
from bench.capacity_probe import Peak, Probe
from bench.capacity_stack import PlatformOptions, Server, start_model, start_platform
from bench.stack import log, raise_open_files_limit, remove_dir

MODES = ("wait", "sse")
TOPOLOGIES = ("embedded", "postgres")
SETTLE_POLL = 1.0


@dataclass(frozen=True)
class CapacityConfig:
    name: str
    levels: tuple[int, ...]
    phases: Phases
    settle_seconds: float  # at most this long, between levels, for runs left over to finish


FULL = CapacityConfig("full", (16, 64, 256, 1024), Phases(warmup=5, window=20, deadline=120), settle_seconds=180)
QUICK = CapacityConfig("quick", (16, 64, 256, 1024), Phases(warmup=3, window=8, deadline=120), settle_seconds=180)


@dataclass(frozen=True)
class LevelResult:
    target: str
    mode: str
    users: int
    load: LevelLoad
    peak: Peak
    leftover_runs: int  # runs of earlier levels still active when this one started
    database_server: bool  # a server of its own (PostgreSQL), not a file inside the server's processes


@dataclass
class CapacityResults:
    config: CapacityConfig
    run_concurrency: int | None
    levels: list[LevelResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    minutes: float = 0.0


DriverFor = Callable[[str], Driver]  # mode -> driver


def settle(server: Server, limit: float) -> int:
    """Wait until the server has no queued or running run (at most `limit` seconds); how many are left."""
    deadline = time.monotonic() + limit
    left = server.database.active_runs()
    while left and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL)
        left = server.database.active_runs()
    return left


def measure_level(server: Server, probe: Probe, driver: Driver, users: int, phases: Phases) -> tuple[LevelLoad, Peak]:
    peak = Peak()
    load = asyncio.run(
        run_level(driver, server.host, server.port, users, phases, sampler=lambda over: probe.watch(peak, over))
    )
    return load, peak


def measure_server(
    server: Server, model_pid: int, driver_for: DriverFor, config: CapacityConfig, results: CapacityResults
) -> None:
    """Every mode at every level against one server, each level after the last one's runs are done."""
    probe = Probe(server.pid, model_pid, server.database)
    for mode in MODES:
        for users in config.levels:
            leftover = settle(server, config.settle_seconds)
            log(f"capacity: {server.label}, {mode}, C={users} ({leftover} runs still active before it)")
            load, peak = measure_level(server, probe, driver_for(mode), users, config.phases)
            results.levels.append(
                LevelResult(server.label, mode, users, load, peak, leftover, server.database.server_pid is not None)
            )
            log(
                f"  {load.runs_per_second:.1f} runs/s, {load.peak_in_flight} in flight at most, "
                f"{len(load.sent_in_window)} sent in the window, "
                f"{sum(load.errors.values())} errors, drain {load.drain_seconds:.0f} s"
            )


def _platform_drivers(api_key: str) -> DriverFor:
    return lambda mode: PlatformDriver(api_key, stream=mode == "sse")


def _measure_peer(
    workdir: Path, ports: set[int], model: tuple[str, int], config: CapacityConfig, results: CapacityResults
) -> None:
    with contextlib.ExitStack() as cleanup:
        try:
            server = start_peer(cleanup, workdir, ports, model[0])
        except RuntimeError as exc:
            results.notes.append(f"the peer was skipped: {exc}")
            log(f"peer skipped: {exc}")
            return
        measure_server(server, model[1], lambda mode: PeerDriver(stream=mode == "sse"), config, results)


def measure_capacity(
    config: CapacityConfig, run_concurrency: int | None, topologies: tuple[str, ...], *, peer: bool
) -> CapacityResults:
    """Start the fake model, then each topology's platform in turn (one at a time), then the peer, and load each."""
    started = time.monotonic()
    results = CapacityResults(config, run_concurrency)
    raise_open_files_limit()
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="agentplatform-capacity-"))
        cleanup.callback(remove_dir, workdir)
        workdir.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
        ports: set[int] = set()
        model = start_model(cleanup, workdir, ports)
        for topology in topologies:
            with contextlib.ExitStack() as platform_cleanup:
                options = PlatformOptions(topology, run_concurrency)
                server = start_platform(platform_cleanup, workdir, ports, model[0], options)
                measure_server(server, model[1], _platform_drivers(server.api_key), config, results)
        if peer:
            _measure_peer(workdir, ports, model, config, results)
    results.minutes = (time.monotonic() - started) / 60
    return results
