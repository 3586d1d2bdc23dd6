"""WebSocket clients for the streaming benchmark: many connections from one asyncio process.

The client is the `websockets` package (asyncio implementation). It offers no compression
(Daphne accepts none anyway) and sends no keepalive pings of its own: an idle connection
carries only Daphne's pings (every 20 s), which the client answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.protocol import State

OPEN_TIMEOUT = 60.0
CLOSE_ALL_TIMEOUT = 60.0
PARALLEL_OPENS = 32  # handshakes in flight: Twisted's listen backlog is 50
CLIENT_ERRORS = (OSError, WebSocketException, TimeoutError, ValueError)
T = TypeVar("T")


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://", 1) + path


def session_path(session_id: str) -> str:
    return f"/ws/sessions/{session_id}/"


async def bounded(calls: Sequence[Callable[[], Awaitable[T]]], parallel: int) -> list[T]:
    """Await every call, at most `parallel` at a time; results in order."""
    gate = asyncio.Semaphore(parallel)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


async def open_socket(url: str, api_key: str | None, *, expect_ready: bool) -> ClientConnection | str:
    """A connection (after `session.ready` when expected), or what went wrong."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        connection = await connect(
            url,
            additional_headers=headers,
            compression=None,
            proxy=None,
            ping_interval=None,
            open_timeout=OPEN_TIMEOUT,
            max_queue=None,  # a watcher's reader drains it; an idle client gets one message
        )
    except CLIENT_ERRORS as exc:
        return f"connect: {type(exc).__name__}: {exc}"
    if not expect_ready:
        return connection
    try:
        first = json.loads(await asyncio.wait_for(connection.recv(), OPEN_TIMEOUT))
    except CLIENT_ERRORS as exc:
        await connection.close()
        return f"first message: {type(exc).__name__}: {exc}"
    if not isinstance(first, dict) or first.get("type") != "session.ready":
        await connection.close()
        return f"first message: {json.dumps(first)[:200]}"
    return connection


@dataclass
class Opened:
    connections: list[ClientConnection]
    failed: list[tuple[str, str]]  # (url, what went wrong)
    seconds: float

    @property
    def errors(self) -> list[str]:
        return [error for _, error in self.failed]


async def open_many(urls: Sequence[str], api_key: str | None, *, expect_ready: bool) -> Opened:
    started = time.perf_counter()
    calls = [lambda url=url: open_socket(url, api_key, expect_ready=expect_ready) for url in urls]
    results = await bounded(calls, PARALLEL_OPENS)
    opened = [r for r in results if not isinstance(r, str)]
    failed = [(url, r) for url, r in zip(urls, results, strict=True) if isinstance(r, str)]
    return Opened(opened, failed, time.perf_counter() - started)


async def close_all(connections: Sequence[ClientConnection]) -> None:
    """Close with the closing handshake; what is not closed after CLOSE_ALL_TIMEOUT is aborted (a busy
    server, or an interrupted benchmark, must not hold the exit for long)."""
    try:
        await asyncio.wait_for(bounded([c.close for c in connections], PARALLEL_OPENS * 4), CLOSE_ALL_TIMEOUT)
    except TimeoutError:
        for connection in connections:
            connection.transport.abort()


def still_open(connections: Sequence[ClientConnection]) -> int:
    return sum(1 for c in connections if c.state is State.OPEN)


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/{pid}/status")


def rss_kib(pid: int) -> int:
    """Resident memory of one process (VmRSS, KiB)."""
    return _status_field(pid, "VmRSS")


def open_fds(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
