"""What the soak watches, every few seconds, and how it says whether a series grows.

- RSS (VmRSS) of each process of `manage.py up`'s tree, named by role (`web-1`, `worker`,
  `span sink`, `redis`, `up`), and their sum.
- Database connections: SQLite, the file descriptors the tree holds on the database file;
  PostgreSQL, the rows of `pg_stat_activity` for the database (bench/capacity_probe.py).
- Redis (the one `up` embeds): `connected_clients`, `PUBSUB NUMPAT`, the number of
  `PUBSUB CHANNELS`, and the length of each Celery queue (a list named like the queue).
- Runs queued or running, from the database.

A series is *growing* when the least-squares slope over the second half of the samples,
times the second half's duration (the rise the fit says happened there), is above its
threshold: max(an absolute floor, a fraction of the series' mean over that half). The first
half is left out: caches, pools and Python's arenas fill up while traffic starts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.capacity_probe import Database, process_name
from bench.cpu import process_tree

QUEUES = ("runs", "schedules", "webhooks", "maintenance")


@dataclass(frozen=True)
class Threshold:
    floor: float
    fraction: float
    unit: str  # how the values print: "MiB" (stored in KiB) or "" (counts)

    def describe(self) -> str:
        floor = f"{self.floor / 1024:g} MiB" if self.unit == "MiB" else f"{self.floor:g}"
        return f"max({floor}, {self.fraction:.0%} of the mean)"


RSS = Threshold(floor=2048, fraction=0.02, unit="MiB")
COUNT = Threshold(floor=2, fraction=0.10, unit="")
QUEUE = Threshold(floor=5, fraction=0.10, unit="")


def _role(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
    except OSError:
        return "?"
    for marker, role in (
        ("agentplatform.web", "web"),
        ("celery", "worker"),
        ("tracing.sink", "span sink"),
        ("redis-server", "redis"),
        ("agentplatform.supervisor", "up"),  # `manage.py up` execs the supervisor
        ("manage.py up", "up"),
    ):
        if marker in argv:
            return role
    return process_name(pid)


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def tree_rss(root_pid: int) -> dict[str, int]:
    """RSS (KiB) by role; several processes of a role are numbered in pid order (web-1, web-2)."""
    by_role: dict[str, list[tuple[int, int]]] = {}
    for pid in sorted(process_tree(root_pid)):
        rss = _rss_kib(pid)
        if rss is not None:
            by_role.setdefault(_role(pid), []).append((pid, rss))
    named: dict[str, int] = {}
    for role, processes in by_role.items():
        for number, (_, rss) in enumerate(processes, start=1):
            named[role if len(processes) == 1 else f"{role}-{number}"] = rss
    return named


def redis_port(root_pid: int) -> int:
    """The port of the Redis that `up` embeds (redis-server retitles itself `redis-server HOST:PORT`)."""
    for pid in process_tree(root_pid):
        if _role(pid) != "redis":
            continue
        argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ").split(" ") if a]
        if "--port" in argv:
            return int(argv[argv.index("--port") + 1])
        return int(argv[1].rsplit(":", 1)[1])
    raise RuntimeError("no redis-server in the platform's process tree (is REDIS_URL set?)")


@dataclass
class Samples:
    """One row per sample: seconds since the start, then each series' value."""

    times: list[float] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    thresholds: dict[str, Threshold] = field(default_factory=dict)

    def add(self, at: float, values: dict[str, tuple[float, Threshold]]) -> None:
        index = len(self.times)
        self.times.append(at)
        for name, (value, threshold) in values.items():
            column = self.series.setdefault(name, [math.nan] * index)
            column.append(value)
            self.thresholds[name] = threshold
        for column in self.series.values():  # a process that went away: a gap
            column.extend([math.nan] * (index + 1 - len(column)))


class Probe:
    def __init__(self, root_pid: int, database: Database, active_runs: Callable[[], int]) -> None:
        self.root_pid, self.database, self.active_runs = root_pid, database, active_runs
        self.redis = redis.Redis(port=redis_port(root_pid), socket_timeout=5)
        self.started = time.monotonic()

    def sample(self, samples: Samples) -> None:
        values: dict[str, tuple[float, Threshold]] = {}
        rss = tree_rss(self.root_pid)
        for name, kib in sorted(rss.items()):
            values[f"RSS {name}"] = (kib, RSS)
        values["RSS total"] = (sum(rss.values()), RSS)
        values["database connections"] = (self.database.connections()[0], COUNT)
        values["Redis connected clients"] = (int(self.redis.info("clients")["connected_clients"]), COUNT)
        values["Redis PUBSUB NUMPAT"] = (int(self.redis.pubsub_numpat()), COUNT)
        values["Redis PUBSUB CHANNELS"] = (len(self.redis.pubsub_channels()), COUNT)
        for queue in QUEUES:
            values[f"queue {queue} (LLEN)"] = (int(self.redis.llen(queue)), QUEUE)
        values["runs queued or running"] = (self.active_runs(), QUEUE)
        samples.add(time.monotonic() - self.started, values)

    def close(self) -> None:
        self.redis.close()


@dataclass(frozen=True)
class Trend:
    slope_per_hour: float
    rise: float  # the fitted rise over the second half
    limit: float
    verdict: str  # "flat", "growing", "falling"


def trend(times: list[float], values: list[float], threshold: Threshold) -> Trend:
    """Least squares over the second half of the samples (gaps left out)."""
    half = len(times) // 2
    points = [(t, v) for t, v in zip(times[half:], values[half:], strict=True) if not math.isnan(v)]
    if len(points) < 3:
        return Trend(math.nan, math.nan, math.nan, "too few samples")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0
    rise = slope * (points[-1][0] - points[0][0])
    limit = max(threshold.floor, threshold.fraction * abs(mean_v))
    verdict = "growing" if rise > limit else "falling" if rise < -limit else "flat"
    return Trend(slope * 3600, rise, limit, verdict)
