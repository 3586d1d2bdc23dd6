"""What the capacity benchmark watches while it loads a server: memory, database connections, CPU.

- Memory: VmRSS of every process in the server's tree (`/proc/PID/status`) and PSS
  (`/proc/PID/smaps_rollup`: shared pages split between the processes that map them, so
  the sum over processes does not count the shared libraries of forked children twice).
- Database connections: PostgreSQL's `pg_stat_activity` rows for the database (all, and
  those running a statement); for SQLite, the file descriptors the tree holds open on the
  database file (one per connection).
- CPU: the server's tree, the fake model, the database server, this process (the client),
  and the whole machine, from /proc (bench/cpu.py).
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg

from bench.cpu import machine, process_cpu, process_tree

SAMPLE_SECONDS = 1.0
ACTIVE_RUNS_SQL = "SELECT count(*) FROM agents_run WHERE status IN ('queued', 'running')"
RUNNING_RUNS_SQL = "SELECT count(*) FROM agents_run WHERE status = 'running'"
PG_CONNECTIONS_SQL = (
    "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    name: str
    rss_kib: int
    pss_kib: int | None


def _status_kib(pid: int, key: str, filename: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/{filename}").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return None


def process_name(pid: int) -> str:
    """A short name from the command line: daphne, celery worker, span_sink, redis-server, ..."""
    try:
        argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except OSError:
        return "?"
    joined = " ".join(argv)
    for marker, name in (
        ("daphne", "daphne"),
        ("agentplatform.web", "web"),
        (" worker", "celery worker"),
        (" beat", "celery beat"),
        ("span_sink", "span sink"),
        ("tracing.sink", "span sink"),
        ("agentplatform.supervisor", "supervisor"),
        ("manage.py up", "manage.py up"),
        ("uvicorn", "uvicorn"),
        ("postgres", "postgres"),
        ("redis-server", "redis-server"),
    ):
        if marker in joined:
            return name
    return Path(argv[0]).name if argv else "?"


def tree_memory(root_pid: int) -> list[ProcessMemory]:
    found = []
    for pid in process_tree(root_pid):
        rss = _status_kib(pid, "VmRSS:", "status")
        if rss is not None:
            found.append(ProcessMemory(pid, process_name(pid), rss, _status_kib(pid, "Pss:", "smaps_rollup")))
    return found


class Database(Protocol):
    label: str
    server_pid: int | None  # the database server's main process (None: in the platform's own processes)

    def connections(self) -> tuple[int, int | None]: ...  # open, and running a statement (None: unknown)
    def active_runs(self) -> int: ...  # queued or running
    def running_runs(self) -> int: ...  # taken by a worker


class PostgresDatabase:
    label = "PostgreSQL"

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.server_pid: int | None = int((data_dir / "postmaster.pid").read_text().split()[0])
        self._conn: psycopg.Connection[tuple[int, ...]] | None = None

    def _query(self, sql: str) -> tuple[int, ...]:
        if self._conn is None:
            self._conn = psycopg.connect(self.url, autocommit=True)
        row = self._conn.execute(sql).fetchone()
        return row if row is not None else (0, 0)

    def connections(self) -> tuple[int, int | None]:
        total, active = self._query(PG_CONNECTIONS_SQL)
        return total, active

    def active_runs(self) -> int:
        return self._query(ACTIVE_RUNS_SQL)[0]

    def running_runs(self) -> int:
        return self._query(RUNNING_RUNS_SQL)[0]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class SqliteDatabase:
    label = "SQLite"
    server_pid: int | None = None  # in the server's own processes

    def __init__(self, path: Path, root_pid: int, *, has_runs: bool = True) -> None:
        self.path, self.root_pid, self.has_runs = path.resolve(), root_pid, has_runs

    def connections(self) -> tuple[int, int | None]:
        count = 0
        for pid in process_tree(self.root_pid):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    count += os.readlink(f"/proc/{pid}/fd/{fd}") == str(self.path)
                except OSError:
                    continue
        return count, None

    def _count(self, sql: str) -> int:
        if not self.has_runs:
            return 0
        with sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])

    def active_runs(self) -> int:
        return self._count(ACTIVE_RUNS_SQL)

    def running_runs(self) -> int:
        return self._count(RUNNING_RUNS_SQL)


@dataclass(frozen=True)
class CpuSnapshot:
    server: float
    model: float
    database: float
    client: float
    busy: float
    total: float


@dataclass
class Peak:
    """Maxima over the samples of one window, and the processes at the highest total RSS."""

    rss_kib: int = 0
    pss_kib: int = 0
    processes: list[ProcessMemory] = field(default_factory=list)
    db_connections: int = 0
    db_active: int | None = None
    samples: int = 0
    cpu: tuple[CpuSnapshot, CpuSnapshot] | None = None

    def seconds(self, part: str) -> float:
        if self.cpu is None:
            return math.nan
        before, after = self.cpu
        return float(getattr(after, part) - getattr(before, part))

    @property
    def machine_busy(self) -> float:
        return self.seconds("busy") / self.seconds("total") if self.cpu else math.nan


class Probe:
    def __init__(self, server_pid: int, model_pid: int, database: Database) -> None:
        self.server_pid, self.model_pid, self.database = server_pid, model_pid, database

    def cpu(self) -> CpuSnapshot:
        busy, total = machine()
        db_pid = self.database.server_pid
        return CpuSnapshot(
            server=sum(process_cpu(pid) for pid in process_tree(self.server_pid)),
            model=process_cpu(self.model_pid),
            database=sum(process_cpu(pid) for pid in process_tree(db_pid)) if db_pid else 0.0,
            client=process_cpu(os.getpid()),
            busy=busy,
            total=total,
        )

    def sample(self, peak: Peak) -> None:
        processes = tree_memory(self.server_pid)
        rss = sum(p.rss_kib for p in processes)
        if rss > peak.rss_kib:
            peak.rss_kib, peak.processes = rss, processes
        peak.pss_kib = max(peak.pss_kib, sum(p.pss_kib or 0 for p in processes))
        total, active = self.database.connections()
        peak.db_connections = max(peak.db_connections, total)
        if active is not None:
            peak.db_active = max(peak.db_active or 0, active)
        peak.samples += 1

    async def watch(self, peak: Peak, window_over: asyncio.Event) -> None:
        """Sample every second (in a thread: /proc and the database are blocking reads) until the window ends."""
        before = await asyncio.to_thread(self.cpu)
        while not window_over.is_set():
            await asyncio.to_thread(self.sample, peak)
            try:
                await asyncio.wait_for(window_over.wait(), SAMPLE_SECONDS)
            except TimeoutError:
                continue
        peak.cpu = (before, await asyncio.to_thread(self.cpu))
