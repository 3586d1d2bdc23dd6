"""The streaming benchmark: idle WebSocket connections, live event latency, SSE time to the first event.

WebSocket clients connect to one Daphne process that the benchmark starts itself (the
README's distributed command, `daphne agentplatform.asgi:application`) against the
stack's PostgreSQL and Redis, so that one process's memory and limits are measured alone;
`manage.py up` keeps serving HTTP and running the worker. For comparison, a second
Daphne process serves a bare ASGI app (bench/echo_asgi.py): Daphne alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
from dataclasses import dataclass

import redis

from bench.history import create_sessions
from bench.idle import IdleResult, IdleServer, measure_idle
from bench.latency import LatencyResult, measure_latency
from bench.stack import Stack, free_port, healthy, log, start_daphne, wait_for
from bench.ttfb import TtfbResult, measure_ttfb
from bench.ws import session_path, ws_url

PLATFORM_APP = "agentplatform.asgi:application"
BARE_APP = "bench.echo_asgi:application"
HEADROOM_FDS = 200  # sockets and files besides the WebSockets, in the client and in the server


@dataclass(frozen=True)
class StreamingConfig:
    idle_steps: tuple[int, ...]
    hold_seconds: float
    watchers: int
    watchers_per_session: int
    latency_levels: tuple[tuple[int, int], ...]  # (runs at once, runs)
    ttfb_samples: int


@dataclass
class StreamingResults:
    config: StreamingConfig
    open_files_limit: int
    platform: IdleResult
    bare: IdleResult
    latency: LatencyResult
    ttfb: TtfbResult


def _idle_steps(config: StreamingConfig) -> tuple[int, ...]:
    """The steps that fit under the open files limit (the client holds every connection too)."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - HEADROOM_FDS
    steps = tuple(n for n in config.idle_steps if n <= limit)
    if steps != config.idle_steps:
        log(f"open files limit {limit + HEADROOM_FDS:,}: idle steps cut to {steps}")
    return steps


def _subscriptions(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return len(client.pubsub_channels())
    finally:
        client.close()


def _platform_daphne(stack: Stack, cleanup: contextlib.ExitStack, name: str) -> tuple[int, str]:
    """The platform in one Daphne process of its own: its pid and base URL."""
    port = free_port(set())
    process = start_daphne(cleanup, PLATFORM_APP, stack.env, stack.workdir / f"daphne-{name}.log", port)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: healthy(base), process, "the benchmark's Daphne")
    return process.pid, base


def _idle(stack: Stack, pid: int, base: str, steps: tuple[int, ...], hold: float) -> IdleResult:
    log(f"idle WebSockets: {max(steps):,} sessions (one per connection), steps {steps}, to Daphne pid {pid}")
    sessions = create_sessions(stack.database_url, stack.api_key, max(steps), "bench idle websocket")
    urls = [ws_url(base, session_path(s)) for s in sessions]
    subscriptions = functools.partial(_subscriptions, stack.env["REDIS_URL"])
    server = IdleServer("platform", pid, urls, stack.api_key, expect_ready=True, subscriptions=subscriptions)
    return asyncio.run(measure_idle(server, steps, hold, reopen=True))


def _bare(stack: Stack, steps: tuple[int, ...], hold: float) -> IdleResult:
    with contextlib.ExitStack() as cleanup:  # stopped as soon as it is measured
        port = free_port(set())
        process = start_daphne(cleanup, BARE_APP, dict(os.environ), stack.workdir / "daphne-bare.log", port)
        log(f"idle WebSockets on Daphne alone (pid {process.pid})")
        urls = [ws_url(f"http://127.0.0.1:{port}", f"/echo/{n}") for n in range(max(steps))]
        server = IdleServer("Daphne alone", process.pid, urls, None, expect_ready=False)
        return asyncio.run(measure_idle(server, steps, hold, reopen=False))


def _latency(stack: Stack, config: StreamingConfig, base_url: str) -> LatencyResult:
    count = max(1, config.watchers // config.watchers_per_session)
    sessions = create_sessions(stack.database_url, stack.api_key, count, "bench watched websocket")
    urls = [(s, ws_url(base_url, session_path(s))) for s in sessions for _ in range(config.watchers_per_session)]
    log(f"event latency: {len(urls):,} watchers on {count} sessions, levels {config.latency_levels}")
    return asyncio.run(measure_latency(urls, stack.api_key, stack.database_url, config.latency_levels))


def measure_streaming(stack: Stack, config: StreamingConfig) -> StreamingResults:
    """Each WebSocket measurement on a Daphne process of its own, started for it and stopped after it."""
    steps = _idle_steps(config)
    with contextlib.ExitStack() as cleanup:
        pid, base = _platform_daphne(stack, cleanup, "idle")
        platform = _idle(stack, pid, base, steps, config.hold_seconds)
    bare = _bare(stack, steps, config.hold_seconds)
    with contextlib.ExitStack() as cleanup:
        _, base = _platform_daphne(stack, cleanup, "latency")
        latency = _latency(stack, config, base)
    log(f"SSE time to the first event: {config.ttfb_samples} streamed runs and as many fake model streams")
    ttfb = measure_ttfb(stack.base_url, stack.api_key, stack.model_url, stack.database_url, config.ttfb_samples)
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return StreamingResults(config, limit, platform, bare, latency, ttfb)
