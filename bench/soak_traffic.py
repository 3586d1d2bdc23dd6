"""The soak's traffic: runs started at a steady rate, each of one kind chosen at random,
and the local endpoint that receives the platform's webhooks.

- `wait`: `POST /api/v1/agents/bench/runs/` in wait mode (two model calls, one tool call).
- `background`: the same with `"background": true` (202 at once); every other one then
  follows `GET /api/v1/runs/{id}/events/` (SSE) for one event and disconnects.
- `stream`: `"stream": true`, read for 1 to 3 events, then the connection is closed: a
  client that goes away in the middle of a run.
- `websocket`: a background run gives a session; a WebSocket on it (`/ws/sessions/{id}/`)
  waits for `session.ready`, sends a run, reads 1 to 3 messages and closes.
- `approval`: a run of `bench-approve` pauses on its CONFIRM tool; its events (SSE) give
  the approval's id, the stream is closed, and after 1-3 s the run is approved or rejected
  through the API, in turn.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

KINDS = {"wait": 0.3, "background": 0.2, "stream": 0.15, "websocket": 0.15, "approval": 0.2}
MAX_IN_FLIGHT = 200  # beyond it the platform is not keeping up: the start is counted as skipped
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
WEBHOOK_EVENTS = ["run.completed", "run.failed", "approval.requested"]


@dataclass
class Traffic:
    started: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "kind: what"
    decisions: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    webhooks: Counter[str] = field(default_factory=Counter)  # deliveries received, by event type


class Driver:
    def __init__(self, base_url: str, api_key: str, traffic: Traffic, seed: int = 1) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        self.ws_url, self.headers = base_url.replace("http://", "ws://", 1), headers
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT + 10, max_keepalive_connections=20)
        self.client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT, limits=limits)
        self.traffic, self.random = traffic, random.Random(seed)
        self.tasks: set[asyncio.Task[None]] = set()
        self._turn = itertools.count()

    async def run(self, seconds: float, rate: float) -> None:
        """Start `rate` runs a second for `seconds`, then wait for those still in flight."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in itertools.count():
            at = start + n / rate
            if at - start >= seconds:
                break
            await asyncio.sleep(max(0.0, at - loop.time()))
            if len(self.tasks) >= MAX_IN_FLIGHT:
                self.traffic.skipped += 1
                continue
            kind = self.random.choices(list(KINDS), weights=list(KINDS.values()))[0]
            task = asyncio.create_task(self._one(kind))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=150)

    async def _one(self, kind: str) -> None:
        self.traffic.started[kind] += 1
        try:
            await getattr(self, f"_{kind}")()
        except (httpx.HTTPError, WebSocketException, OSError, ValueError, KeyError, RuntimeError) as exc:
            self.traffic.errors[f"{kind}: {type(exc).__name__}: {str(exc)[:120]}"] += 1
        else:
            self.traffic.ok[kind] += 1

    async def _post_run(self, agent: str, body: dict[str, Any], expected: tuple[int, ...]) -> dict[str, Any]:
        response = await self.client.post(f"/api/v1/agents/{agent}/runs/", json={"input": "soak", **body})
        if response.status_code not in expected:
            raise RuntimeError(f"HTTP {response.status_code} {response.text[:120]}")
        return dict(response.json())

    async def _wait(self) -> None:
        await self._post_run("bench", {}, (201, 202))

    async def _background(self) -> None:
        run = await self._post_run("bench", {"background": True}, (202,))
        if self.random.random() < 0.5:
            await self._events(f"/api/v1/runs/{run['id']}/events/?after=0", "GET", None, 1)

    async def _stream(self) -> None:
        body = {"input": "soak", "stream": True}
        await self._events("/api/v1/agents/bench/runs/", "POST", body, self.random.randint(1, 3))

    async def _websocket(self) -> None:
        run = await self._post_run("bench", {"background": True}, (202,))
        url = f"{self.ws_url}/ws/sessions/{run['session_id']}/"
        async with connect(url, additional_headers=self.headers, open_timeout=30) as socket:
            ready = json.loads(await socket.recv())
            if ready.get("type") != "session.ready":
                raise RuntimeError(f"websocket: {str(ready)[:120]}")
            await socket.send(json.dumps({"type": "run", "input": "soak", "if_busy": "enqueue"}))
            for _ in range(self.random.randint(1, 3)):
                await socket.recv()

    async def _events(self, path: str, method: str, body: dict[str, Any] | None, count: int) -> list[dict[str, Any]]:
        """Read `count` events from an SSE response, then close the connection (the run goes on)."""
        seen: list[dict[str, Any]] = []
        async with self.client.stream(method, path, json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code} on {method} {path}")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if len(seen) >= count:
                        break
        return seen

    async def _approval(self) -> None:
        run = await self._post_run("bench-approve", {}, (201, 202))
        approval_ids: list[str] = []
        async with self.client.stream("GET", f"/api/v1/runs/{run['id']}/events/?after=0") as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["type"] == "run.awaiting_approval":
                        approval_ids = list(event["data"]["approval_ids"])
                        break
        if not approval_ids:
            raise RuntimeError(f"run {run['id']} ended without asking for an approval")
        await asyncio.sleep(self.random.uniform(1, 3))
        approve = next(self._turn) % 2 == 0
        for approval_id in approval_ids:
            if approve:
                response = await self.client.post(f"/api/v1/approvals/{approval_id}/approve", json={})
            else:
                response = await self.client.post(
                    f"/api/v1/approvals/{approval_id}/reject", json={"reason": "not now (soak)"}
                )
            if response.status_code != 200:
                raise RuntimeError(f"decision: HTTP {response.status_code} {response.text[:120]}")
        self.traffic.decisions["approved" if approve else "rejected"] += 1

    async def close(self) -> None:
        await self.client.aclose()


async def create_schedule(client: httpx.AsyncClient, interval_seconds: int) -> None:
    body = {"name": "soak", "agent": "bench", "input": "scheduled (soak)", "interval_seconds": interval_seconds}
    response = await client.post("/api/v1/schedules/", json={**body, "overlap": "allow"})
    if response.status_code != 201:
        raise RuntimeError(f"schedule: HTTP {response.status_code} {response.text[:200]}")


async def create_webhook(client: httpx.AsyncClient, url: str) -> None:
    response = await client.post("/api/v1/webhooks/", json={"url": url, "event_types": WEBHOOK_EVENTS})
    if response.status_code != 201:
        raise RuntimeError(f"webhook: HTTP {response.status_code} {response.text[:200]}")


async def receive_webhooks(traffic: Traffic, port: int) -> asyncio.Server:
    """A tiny HTTP/1.1 endpoint on 127.0.0.1:port: counts each POST by its event type, answers 200."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                try:
                    traffic.webhooks[str(json.loads(body).get("type"))] += 1
                except ValueError:
                    traffic.webhooks["(not JSON)"] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)
