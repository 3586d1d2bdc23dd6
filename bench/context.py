"""Benchmark context fetching: `.venv/bin/python bench/context.py [--quick]`.

The latency context adds to a run with 5 sources that each answer after a fixed delay (a
local HTTP server that waits before answering, read by `HTTPContext`): fetched one after
the other or concurrently (asyncio, what the platform does), cold (every source fetched)
or cached (Redis, as on a worker, and the in-process cache), and, for comparison, fanned
out to Celery (one task per source, through Redis). Each figure is the wall time of the
whole step as a worker runs it (fetch, cache, render), median over the samples. Writes
Markdown to stdout and to bench/results/context.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from celery import Celery, group
from celery.contrib.testing.worker import start_worker

from agentplatform.sdk.context import ContextProvider, HTTPContext, MemoryCache, RedisCache, fetch_context
from bench.stack import log, publish
from tests.infra import start_redis, stop

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "context.md"
SOURCES = 5
DELAY_MS = 100


@dataclass(frozen=True)
class Row:
    scenario: str
    samples: list[float]  # milliseconds

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


class _Delayed(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet."""

    def do_GET(self) -> None:
        time.sleep(DELAY_MS / 1000)
        body = json.dumps([{"title": f"item {i}", "text": "x" * 200} for i in range(3)]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def delayed_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Delayed)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sources(base_url: str, *, cache_ttl: float = 0) -> list[ContextProvider]:
    return [
        HTTPContext(f"{base_url}/source/{i}", name=f"s{i}", title_field="title", cache_ttl=cache_ttl)
        for i in range(SOURCES)
    ]


def sample(scenario: str, step: Callable[[], object], count: int) -> Row:
    step()  # warm-up (connections, imports, a cache fill)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        step()
        timings.append((time.perf_counter() - started) * 1000)
    log(f"{scenario}: median {statistics.median(timings):.1f} ms")
    return Row(scenario, timings)


def _checked(bundle_step: Callable[[], Any]) -> Callable[[], None]:
    def step() -> None:
        bundle = bundle_step()
        assert all(result.ok for result in bundle.results), [r.error for r in bundle.results]

    return step


@contextmanager
def celery_fan_out(redis_url: str, base_url: str) -> Iterator[Callable[[], None]]:
    """A Celery app whose task fetches one source; a run waits for a group of them."""
    app = Celery("bench-context", broker=redis_url, backend=redis_url)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    providers = sources(base_url)

    @app.task(name="bench.fetch_source")
    def fetch_source(index: int) -> int:
        result = fetch_context([providers[index]]).results[0]
        assert result.ok, result.error
        return len(result.items)

    with start_worker(app, pool="threads", concurrency=SOURCES, perform_ping_check=False, loglevel="WARNING"):

        def step() -> None:
            # A short polling interval: the default (0.5 s) would dominate the figure.
            counts = group(fetch_source.s(i) for i in range(SOURCES)).apply_async().get(timeout=60, interval=0.005)
            assert counts == [3] * SOURCES

        yield step


def measure(count: int) -> list[Row]:
    redis_process, redis_url = start_redis()
    try:
        with delayed_server() as base_url:
            cold = sources(base_url)
            cached = sources(base_url, cache_ttl=3600)
            redis_cache, memory_cache = RedisCache(redis_url), MemoryCache()
            rows = [
                sample("No sources", _checked(lambda: fetch_context([])), count),
                sample("Sequential, cold", _checked(lambda: fetch_context(cold, concurrent=False)), count),
                sample("Concurrent (asyncio), cold", _checked(lambda: fetch_context(cold)), count),
            ]
            with celery_fan_out(redis_url, base_url) as fan_out:
                rows.append(sample("Celery fan-out (a task per source), cold", fan_out, count))
            rows += [
                sample(
                    "Sequential, cached (Redis)",
                    _checked(lambda: fetch_context(cached, cache=redis_cache, concurrent=False)),
                    count,
                ),
                sample("Concurrent, cached (Redis)", _checked(lambda: fetch_context(cached, cache=redis_cache)), count),
                sample(
                    "Concurrent, cached (in-process)",
                    _checked(lambda: fetch_context(cached, cache=memory_cache)),
                    count,
                ),
            ]
            redis_cache.close()
            return rows
    finally:
        stop(redis_process)


def render(rows: list[Row], count: int, minutes: float, load: tuple[float, float, float]) -> str:
    baseline = rows[0].median
    machine = f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
    setup = f"{SOURCES} `HTTPContext` sources, each answering after {DELAY_MS} ms (a local server)"
    lines = [
        f"- Machine: {machine}; load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after",
        f"- {setup}; {count} samples per row after a warm-up; the benchmark took {minutes:.1f} min.",
        "",
        "| Scenario | Median ms | p90 ms | Added vs no sources, ms |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r.scenario} | {r.median:.1f} | {r.p90:.1f} | {r.median - baseline:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke test)")
    count = 8 if parser.parse_args(argv).quick else 30
    started, load = time.monotonic(), os.getloadavg()
    rows = measure(count)
    markdown = render(rows, count, (time.monotonic() - started) / 60, load)
    publish(markdown, RESULTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
