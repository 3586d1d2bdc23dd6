"""The embedded topology's idle memory: `python bench/memory.py [--settle S] [--rounds N]`.

Starts `manage.py up` on a fresh data directory (SQLite, embedded Redis and span sink, the
defaults a user gets), waits until `/api/v1/health/` answers and `--settle` seconds more,
then reads every process in its tree from /proc: RSS, and PSS (`smaps_rollup`), which
splits each shared page between the processes that map it, so that the PSS total is what
the tree costs the machine. Then stops it (SIGTERM) and removes the data directory. With
`--rounds N` it does this N times and reports each process's median.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python bench/memory.py`
    sys.path.insert(0, str(ROOT))

from bench.stack import free_port, log  # noqa: E402  # after the path is set

START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
# The suite's and the shell's own configuration must not leak in: the default deployment is measured.
SKIPPED_ENV = ("DATABASE_URL", "OPENAI", "ANTHROPIC", "REDIS_URL", "CELERY_", "AGENTPLATFORM_", "CLICKHOUSE_URL")


@dataclass(frozen=True)
class Sample:
    pid: int
    name: str
    rss_kib: int
    pss_kib: int


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        pids.append(pid)
        try:
            todo += _children(pid)
        except OSError:
            continue
    return pids


def _rollup(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0])
    return fields


def _name(pid: int, root: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")
    text = " ".join(argv)
    if pid == root:
        return "supervisor (manage.py up)"
    for needle, name in (
        ("redis-server", "redis"),
        ("tracing.sink", "span sink"),
        ("span_sink", "span sink"),
        (" worker", "worker"),
        (" beat", "beat"),
        ("daphne", "web"),
    ):
        if needle in text:
            return name
    return f"{Path(argv[0]).name} {' '.join(argv[1:3])}".strip()


def sample(root: int) -> list[Sample]:
    samples = []
    for pid in tree(root):
        try:
            rollup = _rollup(pid)
            samples.append(Sample(pid, _name(pid, root), rollup["Rss"], rollup["Pss"]))
        except (OSError, KeyError):
            continue  # gone meanwhile
    parents = {s.pid: s for s in samples}
    named = []
    for s in samples:  # a forked child (Celery's beat with -B, a pool process) is named after its parent
        parent = int(Path(f"/proc/{s.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        forked = parent in parents and parents[parent].name == s.name and s.pid != root
        named.append(Sample(s.pid, f"{s.name} (child)", s.rss_kib, s.pss_kib) if forked else s)
    return named


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/v1/health/", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def measure_once(settle: float, extra_env: dict[str, str]) -> list[Sample]:
    with tempfile.TemporaryDirectory(prefix="agentplatform-memory-") as workdir:
        env = {k: v for k, v in os.environ.items() if not k.startswith(SKIPPED_ENV)}
        env.update(AGENTPLATFORM_DATA_DIR=str(Path(workdir) / "data"), PYTHONPATH=str(ROOT), **extra_env)
        port = free_port(set())
        base = f"http://127.0.0.1:{port}"
        with (Path(workdir) / "up.log").open("w") as out:
            process = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _healthy(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"up did not start:\n{(Path(workdir) / 'up.log').read_text()}")
                time.sleep(0.2)
            started = time.monotonic()
            time.sleep(settle)
            log(f"measured {time.monotonic() - started:.0f} s after health answered")
            return sample(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _mib(kib: float) -> str:
    return f"{kib / 1024:.0f}"


def report(rounds: list[list[Sample]]) -> str:
    """One row per process (by name and position), each the median over the rounds."""
    keyed: dict[str, list[Sample]] = {}
    for samples in rounds:
        seen: dict[str, int] = {}
        for s in samples:
            seen[s.name] = seen.get(s.name, 0) + 1
            keyed.setdefault(f"{s.name} {seen[s.name]}" if s.name in ("web", "worker") else s.name, []).append(s)
    lines = ["| process | RSS MiB | PSS MiB |", "|---|---:|---:|"]
    rss_total = pss_total = 0.0
    for name, samples in keyed.items():
        rss = statistics.median(s.rss_kib for s in samples)
        pss = statistics.median(s.pss_kib for s in samples)
        rss_total += rss
        pss_total += pss
        lines.append(f"| {name} | {_mib(rss)} | {_mib(pss)} |")
    lines.append(f"| **total** | **{_mib(rss_total)}** | **{_mib(pss_total)}** |")
    totals = [sum(s.pss_kib for s in samples) for samples in rounds]
    lines.append(f"\nPSS total per round (MiB): {', '.join(_mib(t) for t in totals)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after health answers")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for up's environment")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    rounds = []
    for n in range(args.rounds):
        log(f"round {n + 1}/{args.rounds}")
        rounds.append(measure_once(args.settle, extra))
    print(report(rounds))


if __name__ == "__main__":
    main()
