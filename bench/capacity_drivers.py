"""One run as a client makes it, and how its answer is classified.

A driver sends one run over a `Connection` and returns an `Attempt`: a finished run (`OK`),
a 202 followed to its end by polling (`FOLLOWED`), an overload answer (`OVERLOADED`: 503
with Retry-After, a designed answer, not an error) or an error with a short, countable key
("HTTP 500 internal_error", "run failed: model_error", "stream ended without a final event").
Transport errors and timeouts are classified by the caller (bench/capacity_load.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from bench.http_async import Connection, Head

RUN_INPUT = "What is stored under key 42?"
RUNS_PATH = "/api/v1/agents/bench/runs/"
POLL_SECONDS = (1.0, 5.0)  # a 202's run is polled after 1 s, then twice as long each time, at most 5 s
FINAL_EVENTS = frozenset({b"run.completed", b"run.failed", b"run.cancelled", b"error"})
PEER_PATH = "/agents/bench/runs"
PEER_FINAL_EVENTS = frozenset({b"RunCompleted", b"RunError", b"RunCancelled"})
SSE_TAIL_SECONDS = 2.0  # after the final event, how long the end of the stream may take


class Kind(StrEnum):
    OK = "ok"  # the finished run in the answer (201), or the final event of its stream
    FOLLOWED = "followed"  # 202 (accepted, wait not held), then polled until it finished
    OVERLOADED = "overloaded"  # 503 with Retry-After, before anything was written
    ERROR = "error"


@dataclass(frozen=True)
class Attempt:
    kind: Kind
    error: str | None = None
    retry_after: float = 0.0
    polls: int = 0
    done_at: float | None = None  # loop time when the outcome was known (the final event), if before the return


Driver = Callable[[Connection], Awaitable[Attempt]]


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def error_code(payload: Any) -> str:
    """The machine-readable code of an error body or a run's `error` ({"code", "message"}), else a snippet."""
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        if isinstance(inner, dict) and inner.get("code"):
            return str(inner["code"])
        if isinstance(inner, str):
            return inner[:60]
    return json.dumps(payload)[:60] if payload is not None else "no body"


def retry_after(head: Head) -> float | None:
    """Retry-After in seconds (1 s for a form we do not read, an HTTP date); None without one."""
    value = head.headers.get("retry-after")
    if value is None:
        return None
    return float(value) if value.replace(".", "", 1).isdigit() else 1.0


def refusal(head: Head, data: bytes) -> Attempt:
    """An answer that is not a run: a 503 with Retry-After is overload; anything else an error."""
    body = _json(data)
    seconds = retry_after(head)
    if head.status == 503 and seconds is not None:
        return Attempt(Kind.OVERLOADED, retry_after=seconds)
    suffix = " without Retry-After" if head.status == 503 else ""
    return Attempt(Kind.ERROR, f"HTTP {head.status} {error_code(body)}{suffix}")


def _finished(run: Any, how: Kind, polls: int = 0) -> Attempt:
    status = run.get("status") if isinstance(run, dict) else None
    if status == "completed":
        return Attempt(how, polls=polls)
    prefix = "202 then run" if how is Kind.FOLLOWED else "run"
    return Attempt(Kind.ERROR, f"{prefix} {status}: {error_code(run.get('error') if isinstance(run, dict) else run)}")


def _final_event(buffer: bytes, finals: frozenset[bytes]) -> tuple[bytes, Any] | None:
    """The first final event in the SSE text so far (its type and data), if one has arrived whole."""
    for block in buffer.split(b"\n\n")[:-1]:
        fields = dict(
            line.split(b": ", 1) for line in block.split(b"\n") if b": " in line and not line.startswith(b":")
        )
        kind = fields.get(b"event")
        if kind in finals:
            return kind, _json(fields.get(b"data", b""))
    return None


async def follow_stream(conn: Connection, head: Head, finals: frozenset[bytes]) -> tuple[bytes, Any, float] | None:
    """Read an SSE answer up to its first final event: the event's type, its data, and when it arrived."""
    buffer, chunks = b"", conn.chunks(head)
    async for piece in chunks:
        buffer += piece
        found = _final_event(buffer, finals)
        if found is not None:
            done_at = asyncio.get_running_loop().time()
            await _finish_reading(conn, chunks)
            return (*found, done_at)
    return None


class PlatformDriver:
    """`POST /api/v1/agents/bench/runs/` with a new session each run: wait mode, or `stream: true` (SSE)."""

    def __init__(self, api_key: str, *, stream: bool) -> None:
        self.stream = stream
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.body = json.dumps({"input": RUN_INPUT, **({"stream": True} if stream else {})}).encode()

    async def __call__(self, conn: Connection) -> Attempt:
        head = await conn.send("POST", RUNS_PATH, self.body, self.headers)
        if head.status == 200 and head.headers.get("content-type", "").startswith("text/event-stream"):
            return await self._follow_stream(conn, head)
        data = await conn.body(head)
        if head.status == 201:
            return _finished(_json(data), Kind.OK)
        if head.status == 202:
            return await self._poll(conn, head, _json(data))
        return refusal(head, data)

    async def _follow_stream(self, conn: Connection, head: Head) -> Attempt:
        found = await follow_stream(conn, head, FINAL_EVENTS)
        if found is None:
            return Attempt(Kind.ERROR, "stream ended without a final event")
        kind, event, done_at = found
        if kind == b"run.completed":
            return Attempt(Kind.OK, done_at=done_at)
        data = event.get("data", event) if isinstance(event, dict) else event
        detail = data.get("error") if isinstance(data, dict) else data
        return Attempt(Kind.ERROR, f"{kind.decode()}: {error_code(detail)}")

    async def _poll(self, conn: Connection, head: Head, run: Any) -> Attempt:
        """A 202: `GET /api/v1/runs/{id}/` until the run is no longer active, waiting Retry-After when the
        server sends one, else 1 s, 2 s, 4 s, then every 5 s (a polite client)."""
        run_id = run.get("id") if isinstance(run, dict) else None
        if not run_id:
            return Attempt(Kind.ERROR, "202 without a run id")
        polls, wait = 0, POLL_SECONDS[0]
        while True:
            await asyncio.sleep(retry_after(head) or wait)
            wait = min(2 * wait, POLL_SECONDS[1])
            polls += 1
            head = await conn.send("GET", f"/api/v1/runs/{run_id}/", None, self.headers)
            data = await conn.body(head)
            if head.status != 200:
                attempt = refusal(head, data)
                if attempt.kind is Kind.ERROR:
                    return Attempt(Kind.ERROR, f"202 then {attempt.error} on poll", polls=polls)
                continue
            current = _json(data)
            if isinstance(current, dict) and current.get("status") not in ("queued", "running"):
                return _finished(current, Kind.FOLLOWED, polls)


async def _finish_reading(conn: Connection, chunks: Any) -> None:
    """Read the stream to its end so the connection can be reused; drop it if the end does not come soon."""
    try:
        async with asyncio.timeout(SSE_TAIL_SECONDS):
            async for _ in chunks:
                pass
    except TimeoutError:
        conn.close()


class PeerDriver:
    """Agno's AgentOS: `POST /agents/bench/runs` (a form; no session_id, so each run starts a new
    session), `stream=false` for the finished run as JSON, `stream=true` for its SSE events."""

    def __init__(self, *, stream: bool) -> None:
        self.stream = stream
        self.headers = {"Content-Type": "application/x-www-form-urlencoded"}
        self.body = urlencode({"message": RUN_INPUT, "stream": "true" if stream else "false"}).encode()

    async def __call__(self, conn: Connection) -> Attempt:
        head = await conn.send("POST", PEER_PATH, self.body, self.headers)
        if head.status == 200 and self.stream:
            found = await follow_stream(conn, head, PEER_FINAL_EVENTS)
            if found is None:
                return Attempt(Kind.ERROR, "stream ended without a final event")
            kind, event, done_at = found
            if kind == b"RunCompleted":
                return Attempt(Kind.OK, done_at=done_at)
            detail = event.get("content") if isinstance(event, dict) else event
            return Attempt(Kind.ERROR, f"{kind.decode()}: {error_code(detail)}")
        data = await conn.body(head)
        if head.status != 200:
            return refusal(head, data)
        run = _json(data)
        status = run.get("status") if isinstance(run, dict) else None
        if status == "COMPLETED":
            return Attempt(Kind.OK)
        return Attempt(Kind.ERROR, f"run {status}: {error_code(run.get('content') if isinstance(run, dict) else run)}")
