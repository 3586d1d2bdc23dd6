"""CPU accounting from /proc (Linux): the platform's processes, and the whole machine.

Tells whether a round was limited by the platform itself (its processes near one core:
each Daphne process runs Python on one core at a time) or by something else on the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    platform: float  # CPU seconds used so far by the platform's process tree
    busy: float  # machine-wide busy CPU seconds (all cores)
    total: float  # machine-wide CPU seconds (all cores)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += _children(current)
    return tree


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def sample(platform_pid: int) -> CpuSample:
    busy, total = machine()
    return CpuSample(sum(process_cpu(pid) for pid in process_tree(platform_pid)), busy, total)
