"""The reads section: many clients reading session history at once, against the peer.

One PostgreSQL holds both data sets: 10,000 sessions of 20 messages each for the platform
(COPY into its tables, as bench/history.py seeds them) and the same 10,000 sessions of five
4-message runs for the peer (written by Agno's own `PostgresDb`, bench/peer_agno_seed.py).
The platform is one web process as the distributed recipe runs it (`manage.py migrate`,
then `python -m agentplatform.web`, Daphne serving `agentplatform.asgi:application`; Redis
and the span sink beside it; no worker: reads need none); the peer is Agno's AgentOS under
uvicorn on `PostgresDb`. At each C, the platform then the peer get C closed-loop readers
(bench/reads_load.py): the platform's
`GET /api/v1/sessions/{id}/messages/?order=desc&limit=50` with an API key, the peer's
`GET /sessions/{id}/runs?type=agent` (no auth: AgentOS has none by default). After each
level, 20 reads one at a time and the readiness check say whether the server came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import stack
from bench.capacity_peer import AGNO_VERSION, ensure_peer_python, serve_peer
from bench.capacity_stack import clean_env
from bench.cpu import process_cpu
from bench.history import MESSAGE_COLUMNS, SESSION_COLUMNS, _owner_and_agent, message_rows
from bench.http_async import Connection
from bench.reads_load import READ, Level, Phases, Target, attempt, run_level

SESSIONS = 10_000
MESSAGES = 20  # per session: five runs of four messages
PROBES = 20
SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class WarmUp:
    clients: int
    seconds: float


WARM_UP = WarmUp(100, 15.0)  # per server, before the first level, not reported


@dataclass(frozen=True)
class ReadsConfig:
    name: str
    levels: tuple[int, ...]
    warmup: float
    window: float
    timeout: float  # a client gives up on a request after this long


FULL = ReadsConfig("full", (100, 1_000, 10_000), warmup=5, window=20, timeout=30)
QUICK = ReadsConfig("quick", (100, 1_000, 10_000), warmup=3, window=8, timeout=30)


@dataclass
class Watch:
    """The server process through the window: memory and threads at their peak, CPU used."""

    rss_kib: int = 0
    threads: int = 0
    cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0


@dataclass(frozen=True)
class Recovery:
    reads: int  # of PROBES, one at a time after the level
    median_ms: float
    ready: str  # the readiness check's status line


@dataclass(frozen=True)
class LevelResult:
    server: str
    clients: int
    level: Level
    watch: Watch
    idle_rss_kib: int
    recovery: Recovery


@dataclass
class ReadsResults:
    config: ReadsConfig
    levels: list[LevelResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    minutes: float = 0.0


@dataclass(frozen=True)
class Served:
    target: Target
    pid: int
    ready_path: str


def _status(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith(key)), 0)


async def _watch(pid: int, watch: Watch, over: asyncio.Event) -> None:
    cpu, client = process_cpu(pid), process_cpu(os.getpid())
    while not over.is_set():
        watch.rss_kib = max(watch.rss_kib, _status(pid, "VmRSS:"))
        watch.threads = max(watch.threads, _status(pid, "Threads:"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(over.wait(), 1.0)
    watch.cpu_seconds = process_cpu(pid) - cpu
    watch.client_cpu_seconds = process_cpu(os.getpid()) - client


async def _recovery(served: Served, timeout: float) -> Recovery:
    """After the load: reads one at a time on a fresh connection, then the readiness check."""
    await asyncio.sleep(SETTLE_SECONDS)
    conn, loop, times = Connection(served.target.host, served.target.port), asyncio.get_running_loop(), []
    try:
        for path in served.target.paths[:PROBES]:
            started = loop.time()
            kind, _ = await attempt(served.target, conn, path, timeout)
            if kind == READ:
                times.append((loop.time() - started) * 1000)
        ready, _ = await attempt(
            Target("", served.target.host, served.target.port, [], {}, lambda _: None), conn, served.ready_path, timeout
        )
    finally:
        conn.close()
    return Recovery(len(times), statistics.median(times) if times else float("nan"), "200" if ready == READ else ready)


def measure_level(served: Served, clients: int, config: ReadsConfig) -> LevelResult:
    watch, idle = Watch(), _status(served.pid, "VmRSS:")

    async def level() -> tuple[Level, Recovery]:
        phases = Phases(config.warmup, config.window, config.timeout)
        load = await run_level(served.target, clients, phases, lambda over: _watch(served.pid, watch, over))
        return load, await _recovery(served, config.timeout)

    load, recovery = asyncio.run(level())
    return LevelResult(served.target.label, clients, load, watch, idle, recovery)


def _seed_platform(database_url: str, api_key: str) -> list[str]:
    """SESSIONS sessions of MESSAGES messages each, owned by the key's user: two COPYs."""
    ids, now = [uuid.uuid4() for _ in range(SESSIONS)], datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        owner_id, agent_id = _owner_and_agent(conn, api_key)
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY agents_session ({SESSION_COLUMNS}) FROM STDIN") as copy:
                for session_id in ids:
                    copy.write_row((session_id, owner_id, agent_id, "bench reads", "{}", MESSAGES, now, now))
            with cursor.copy(f"COPY agents_message ({MESSAGE_COLUMNS}) FROM STDIN") as copy:
                for session_id in ids:
                    for row in message_rows(session_id, MESSAGES, now):
                        copy.write_row(row)
        conn.execute("ANALYZE agents_session")
        conn.execute("ANALYZE agents_message")
    return [str(session_id) for session_id in ids]


def _platform_page(body: Any) -> str | None:
    positions = [message["position"] for message in body["results"]]
    return None if positions == list(range(MESSAGES - 1, -1, -1)) else f"positions {positions[:3]}..."


def _peer_page(body: Any) -> str | None:
    messages = sum(len(run.get("messages") or []) for run in body)
    return None if messages == MESSAGES else f"{len(body)} runs, {messages} messages"


def start_platform(cleanup: contextlib.ExitStack, workdir: Path, ports: set[int], database_url: str) -> Served:
    """`manage.py migrate`, an API key, the sessions, then one Daphne process."""
    env = clean_env()
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=stack._start_redis(cleanup, workdir),
        AGENTPLATFORM_DATA_DIR=str(workdir / "data"),
        AGENTPLATFORM_AGENTS="bench.agents:agents",
        OPENAI_API_KEY="bench",
    )
    subprocess.run([stack.PYTHON, "manage.py", "migrate", "-v", "0"], cwd=stack.ROOT, env=env, check=True)
    api_key = stack.create_api_key(env)
    stack.log(f"seeding {SESSIONS:,} sessions of {MESSAGES} messages for the platform (COPY)")
    ids = _seed_platform(database_url, api_key)
    # The span sink, as `up` starts it beside the web process: the reads' spans reach the
    # embedded trace store, and the readiness check finds the span route alive.
    stack.spawn(cleanup, [stack.PYTHON, "-m", "tracing.sink"], env, workdir / "span-sink.log", "span sink")
    port = stack.free_port(ports)
    process = stack.start_daphne(
        cleanup, "agentplatform.asgi:application", env, workdir / "daphne.log", port, module="agentplatform.web"
    )
    paths = [f"/api/v1/sessions/{session_id}/messages/?order=desc&limit=50" for session_id in ids]
    headers = {"Authorization": f"Bearer {api_key}"}
    target = Target("agentplatform (Daphne)", "127.0.0.1", port, paths, headers, _platform_page)
    return Served(target, process.pid, "/api/v1/ready/")


def start_peer(cleanup: contextlib.ExitStack, workdir: Path, ports: set[int], database_url: str) -> Served:
    """The same sessions in Agno's tables (its own code writes them), then AgentOS under uvicorn."""
    python = ensure_peer_python()
    stack.log(f"seeding {SESSIONS:,} sessions of {MESSAGES} messages for the peer (Agno's PostgresDb, then SQL)")
    seeded = subprocess.run(
        [str(python), "bench/peer_agno_seed.py", database_url, str(SESSIONS), str(MESSAGES // 4)],
        cwd=stack.ROOT, env=clean_env(), capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    ids = seeded.stdout.split()
    label = f"agno {AGNO_VERSION} (uvicorn, PostgresDb)"
    port, pid = serve_peer(
        cleanup, workdir / "peer", ports, label, OPENAI_BASE_URL="http://127.0.0.1:9/v1", PEER_DB_URL=database_url
    )
    paths = [f"/sessions/{session_id}/runs?type=agent" for session_id in ids]
    return Served(Target(label, "127.0.0.1", port, paths, {}, _peer_page), pid, "/health")


def measure_reads(config: ReadsConfig, *, peer: bool) -> ReadsResults:
    """Start PostgreSQL, the platform and the peer; at each C, load one then the other."""
    started, results = time.monotonic(), ReadsResults(config)
    limit = stack.raise_open_files_limit()
    stack.log(f"open files limit raised to {limit:,} (the client and the servers inherit it)")
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="agentplatform-reads-"))
        cleanup.callback(stack.remove_dir, workdir)
        workdir.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
        ports: set[int] = set()
        database_url = stack.start_postgres(cleanup, workdir / "postgres", stack.free_port(ports))
        servers = [start_platform(cleanup, workdir, ports, database_url)]
        if peer:
            try:
                servers.append(start_peer(cleanup, workdir, ports, database_url))
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                results.notes.append(f"the peer was skipped: {exc}")
        for served in servers:  # each server's first requests, and its tables' pages, are not what is measured
            stack.log(f"reads: warming {served.target.label} up ({WARM_UP.clients} readers, {WARM_UP.seconds:g} s)")
            measure_level(served, WARM_UP.clients, dataclasses.replace(config, warmup=0, window=WARM_UP.seconds))
        for clients in config.levels:
            for served in servers:
                stack.log(f"reads: {served.target.label}, C={clients:,}")
                result = measure_level(served, clients, config)
                results.levels.append(result)
                stack.log(
                    f"  {result.level.reads_per_second:.0f} reads/s, {sum(result.level.errors.values())} errors, "
                    f"{result.level.unanswered_clients} clients unanswered; after: {result.recovery}"
                )
    results.minutes = (time.monotonic() - started) / 60
    return results
